// Live counts on the activation page: the only script in the console. Everything else works without it.
(function () {
  "use strict";
  var box = document.getElementById("counts");
  if (!box || !window.fetch) { return; }
  var note = document.getElementById("progress-note");
  var state = document.getElementById("state");
  var delay = 1000;
  function show(data) {
    Object.keys(data.progress).forEach(function (key) {
      var el = box.querySelector('[data-count="' + key + '"]');
      if (el) { el.textContent = data.progress[key]; }
    });
    if (state) { state.textContent = data.state; state.className = "badge " + data.state; }
    box.dataset.done = data.done ? "true" : "false";
    if (note && data.done) { note.textContent = "Every message has reached a final state."; }
  }
  function tick() {
    fetch(box.dataset.url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); return null; }  // session ended: go to the login
        return r.ok ? r.json() : null;
      })
      .then(function (data) {
        if (data) { show(data); delay = 1000; } else { delay = Math.min(delay * 2, 15000); }
        if (!data || !data.done || data.state === "queued") { setTimeout(tick, delay); }
      })
      .catch(function () { delay = Math.min(delay * 2, 15000); setTimeout(tick, delay); });
  }
  tick();
})();
