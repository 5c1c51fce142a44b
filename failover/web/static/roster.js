// Receipts and replies keep arriving after every message is sent: poll the roster on its own.
(function () {
  "use strict";
  var counts = document.getElementById("roster-counts");
  if (!counts) { return; }
  var answers = {ack: "acknowledged", need_help: "needs help"};
  function badge(cell, css, text) {
    if (!cell) { return; }
    var span = document.createElement("span");
    span.className = "badge " + css;
    span.textContent = text;
    cell.replaceChildren(span);
  }
  function refresh() {
    fetch(counts.dataset.url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        data.counts.forEach(function (c) {
          var row = counts.querySelector('tr[data-group="' + CSS.escape(c.group) + '"]');
          if (!row) { return; }
          ["acknowledged", "need_help", "no_answer"].forEach(function (k) {
            var cell = row.querySelector('[data-k="' + k + '"]');
            if (cell) { cell.textContent = c[k]; }
          });
        });
        data.people.forEach(function (p) {
          var row = document.querySelector('#people tr[data-person="' + CSS.escape(p.person) + '"]');
          if (!row) { return; }
          badge(row.querySelector('[data-k="reached"]'), p.reached ? "reached" : "unreached", p.reached ? "reached" : "not yet");
          badge(row.querySelector('[data-k="answer"]'), p.answer || "no_answer", answers[p.answer] || "no answer");
        });
      })
      .catch(function () { /* offline for a moment: try again below */ })
      .finally(function () { setTimeout(refresh, 3000); });
  }
  setTimeout(refresh, 3000);
})();
