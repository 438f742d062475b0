// Times in the reader's own zone: every page's <time> elements once the
// page is read, and, for the pages' own scripts, slipwayTimes.when (one
// time) and slipwayTimes.show (the <time> elements under a node that
// arrived later).
var slipwayTimes = (function () {
  "use strict";
  function when(iso) {
    return new Date(iso).toLocaleString(undefined, { month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  }
  function show(root) {
    Array.prototype.forEach.call(root.querySelectorAll("time"), function (t) {
      t.textContent = when(t.dateTime);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { show(document); });
  return { when: when, show: show };
})();
