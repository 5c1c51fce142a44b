// Optional: the page reads fine without it. Adds the reader's local time to each UTC time and
// says "this page may be stale" when it is much older than the publisher's heartbeat.
(function () {
  "use strict";
  var page = document.getElementById("status-page");
  if (!page) { return; }
  var times = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var at = new Date(times[i].getAttribute("datetime"));
    if (!isNaN(at.getTime())) {
      var local = document.createElement("span");
      local.className = "local-time";
      local.textContent = " (" + at.toLocaleString() + " your time)";
      times[i].parentNode.insertBefore(local, times[i].nextSibling);
    }
  }
  var generated = new Date(page.getAttribute("data-generated"));
  var heartbeat = parseInt(page.getAttribute("data-heartbeat"), 10) || 300;
  var age = (Date.now() - generated.getTime()) / 1000;
  if (age > 3 * heartbeat) {
    var stale = document.getElementById("stale");
    stale.querySelector(".age").textContent = Math.round(age / 60) + " minutes";
    stale.style.display = "block";
  }
})();
