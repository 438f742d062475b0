// The Line page keeps itself current: when the platform's event stream
// says something happened (a push, a run, a chart, Flux), it asks the
// dashboard for the page's rows again and swaps them in; while a run on
// the page is still going, it asks every two seconds. The dashboard
// answers every open page from one reading of the line.
(function () {
  "use strict";
  var apps = document.getElementById("apps");
  var live = document.getElementById("live");
  var pending = null, inFlight = false, again = false;

  function going() {
    return apps.querySelector("tr.run-queued, tr.run-running, tr.run-notStarted") !== null;
  }
  function refresh() {
    pending = null;
    if (inFlight) { again = true; return; }
    inFlight = true;
    fetch(apps.dataset.refresh, { credentials: "same-origin" }).then(function (r) {
      // Signed out (the session ended): the page itself goes to sign-in.
      if (r.status === 401) { location.reload(); }
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.text();
    }).then(function (html) {
      apps.innerHTML = html;
      slipwayTimes.show(apps);
      live.textContent = "Live.";
    }).catch(function (e) {
      live.textContent = "Could not refresh (" + e.message + "); retrying.";
    }).finally(function () {
      inFlight = false;
      if (again) { again = false; soon(100); }
    });
  }
  function soon(ms) {
    if (pending === null) { pending = setTimeout(refresh, ms); }
  }
  var stream = new EventSource(apps.dataset.stream);
  stream.addEventListener("open", function () { live.textContent = "Live."; });
  stream.addEventListener("error", function () { live.textContent = "Reconnecting…"; });
  // A push's run is recorded a moment after the push's event: look again
  // a little later too.
  stream.addEventListener("line", function () { soon(300); setTimeout(function () { soon(0); }, 2000); });
  setInterval(function () { if (going()) { soon(0); } }, 2000);
})();
