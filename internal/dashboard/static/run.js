// The Run page streams its run: the run's state as it changes, and each
// step's log as the runner writes it (masked as stored). Cancel and Run
// again are asked of the dashboard with its own header, which a page of
// another site cannot send.
(function () {
  "use strict";
  var run = document.getElementById("run");
  if (!run) { return; }
  var live = document.getElementById("live");
  var result = document.getElementById("action-result");
  var cancel = document.getElementById("cancel");
  var rerun = document.getElementById("rerun");

  function setStatus(el, status) {
    if (!el) { return; }
    el.textContent = status;
    el.className = "status " + status;
  }
  function showRun(r) {
    setStatus(document.getElementById("run-status"), r.status);
    var err = document.getElementById("run-error");
    err.textContent = r.error || "";
    err.hidden = !r.error;
    var finished = ["queued", "running", "notStarted"].indexOf(r.status) < 0;
    if (cancel) { cancel.hidden = finished; }
    (r.stages || []).forEach(function (s, si) {
      setStatus(run.querySelector('[data-stage="' + si + '"]'), s.status);
      (s.jobs || []).forEach(function (j, ji) {
        setStatus(run.querySelector('[data-job="' + si + "-" + ji + '"]'), j.status);
        (j.steps || []).forEach(function (st, ki) {
          var d = run.querySelector('[data-step="' + si + "-" + ji + "-" + ki + '"]');
          if (!d) { return; }
          setStatus(d.querySelector("summary .status"), st.status);
          if (st.status === "running" || st.status === "failed") { d.open = true; }
          var pre = d.querySelector("pre.log");
          if (st.log && !pre.dataset.log) { pre.dataset.log = st.log; }
        });
      });
    });
  }
  function logOf(name) {
    var found = null;
    Array.prototype.forEach.call(run.querySelectorAll("pre.log"), function (p) {
      if (p.dataset.log === name) { found = p; }
    });
    return found;
  }
  var stream = new EventSource(run.dataset.stream);
  stream.addEventListener("open", function () { live.textContent = "· live"; });
  stream.addEventListener("run", function (m) { showRun(JSON.parse(m.data)); });
  stream.addEventListener("log", function (m) {
    var chunk = JSON.parse(m.data);
    var pre = logOf(chunk.step);
    if (pre) { pre.appendChild(document.createTextNode(chunk.text)); }
  });
  stream.addEventListener("end", function () { live.textContent = "· finished"; stream.close(); });
  stream.addEventListener("error", function () {
    if (stream.readyState !== EventSource.CLOSED) { live.textContent = "· reconnecting…"; }
  });

  function act(what, button) {
    button.disabled = true;
    fetch("/-/ui/api/runs/" + run.dataset.id + "/" + what, { method: "POST", credentials: "same-origin",
      headers: { "X-Slipway-Dashboard": "1" } }).then(function (r) {
      return r.json().then(function (body) { result.textContent = body.message || body.error; });
    }).catch(function (e) { result.textContent = e.message; }).finally(function () { button.disabled = false; });
  }
  if (cancel) { cancel.addEventListener("click", function () { act("cancel", cancel); }); }
  if (rerun) { rerun.addEventListener("click", function () { act("rerun", rerun); }); }
})();
