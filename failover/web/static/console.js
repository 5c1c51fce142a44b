// The activation page keeps itself current: the only script in the console. Everything else works without it.
// It polls /activations/<id>/live with the version it has; the server answers "unchanged" in a few bytes, or
// the counts and the parts to redraw (rendered by the same templates as the page). It keeps polling while
// receipts may still arrive or the incident is open, so late receipts and answers reach an open page.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch) { return; }
  var note = document.getElementById("progress-note");
  var state = document.getElementById("state");
  var quick = 2000, slowest = 5000, delay = quick;  // an unchanged answer is a few bytes: never wait long
  var keepGoing = live.dataset.live === "true";

  function redraw(data) {
    var open = Array.prototype.map.call(live.querySelectorAll("details[open][id]"), function (d) { return d.id; });
    Object.keys(data.html).forEach(function (name) {
      var part = live.querySelector('[data-part="' + name + '"]');
      if (part) { part.innerHTML = data.html[name]; }  // server-rendered, escaped by the template engine
    });
    open.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; } });
    if (state) { state.textContent = data.state; state.className = "badge " + data.state; }
    live.dataset.version = data.version;
    keepGoing = data.live;
    live.dataset.live = data.live ? "true" : "false";
    if (note && !data.live) { note.textContent = "Final: every receipt is in and the incident is closed."; }
    countdown();
  }

  function tick() {
    var query = new URLSearchParams(window.location.search);
    query.set("v", live.dataset.version || "");
    fetch(live.dataset.url + "?" + query.toString(), {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); return null; }  // session ended: go to the login
        return r.ok ? r.json() : null;
      })
      .then(function (data) {
        if (data && data.changed) { redraw(data); delay = quick; }
        else { delay = Math.min(delay * 1.5, slowest); }
        if (keepGoing) { setTimeout(tick, delay); }
      })
      .catch(function () { delay = Math.min(delay * 2, slowest); setTimeout(tick, delay); });
  }

  // Escalation countdowns tick every second between polls.
  var started = Date.now();
  function countdown() {
    started = Date.now();
    live.querySelectorAll("[data-seconds-left]").forEach(function (el) { el.dataset.base = el.dataset.secondsLeft; });
  }
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  setInterval(function () {
    var passed = Math.floor((Date.now() - started) / 1000);
    live.querySelectorAll("[data-seconds-left]").forEach(function (el) {
      var left = Math.max(0, parseInt(el.dataset.base || el.dataset.secondsLeft, 10) - passed);
      el.textContent = left === 0 ? "due now" : "in " + Math.floor(left / 60) + ":" + pad(left % 60);
    });
  }, 1000);
  countdown();
  if (keepGoing) { setTimeout(tick, quick); }
})();
