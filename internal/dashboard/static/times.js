// Times in the reader's own zone.
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("time"), function (t) {
    t.textContent = new Date(t.dateTime).toLocaleString(undefined, { month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  });
})();
