// The Timeline keeps itself current: new events arrive from the
// platform's stream (server-sent events) and go on top; the filter hides
// the rows that do not contain its words.
(function () {
  "use strict";
  var body = document.getElementById("events");
  var live = document.getElementById("live");
  var filter = document.getElementById("filter");


  function matches(row) {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var text = row.textContent.toLowerCase();
    return words.every(function (w) { return text.indexOf(w) >= 0; });
  }
  function applyFilter() {
    Array.prototype.forEach.call(body.rows, function (row) { row.hidden = !matches(row); });
  }
  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text;
    return td;
  }
  function add(e) {
    var empty = body.querySelector("tr.empty");
    if (empty) { empty.remove(); }
    var row = document.createElement("tr");
    row.className = (e.severity || "info") + " new";
    var time = document.createElement("td");
    var tag = document.createElement("time");
    tag.dateTime = e.time;
    tag.textContent = slipwayTimes.when(e.time);
    time.appendChild(tag);
    row.appendChild(time);
    row.appendChild(cell(e.source));
    row.appendChild(cell(e.team || "platform"));
    row.appendChild(cell(((e.kind || "") + " " + (e.name || "")).trim()));
    var what = (e.reason ? e.reason + " " : "") + e.message + (e.by ? " by " + e.by : "");
    row.appendChild(cell(what));
    row.hidden = !matches(row);
    body.insertBefore(row, body.firstChild);
  }
  filter.addEventListener("input", applyFilter);
  var stream = new EventSource(body.dataset.stream);
  stream.addEventListener("open", function () { live.textContent = "Live."; });
  stream.addEventListener("error", function () { live.textContent = "Reconnecting…"; });
  stream.addEventListener("line", function (m) { add(JSON.parse(m.data)); });
})();
