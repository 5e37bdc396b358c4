/* The device page's charts refresh by htmx polling (every 10 s), which replaces the charts'
   container. Keep what the reader was doing: the data tables they opened stay open, and focus
   returns to the control that had it. */
(function () {
  "use strict";

  var opened = [];
  var focused = null;

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || target.id !== "device-charts") {
      return;
    }
    opened = Array.prototype.map.call(target.querySelectorAll("details[open]"), function (item) {
      return item.id;
    });
    var active = document.activeElement;
    focused = active && target.contains(active) ? (active.id || (active.closest("details") || {}).id || null) : null;
  });

  document.addEventListener("htmx:afterSettle", function () {
    var charts = document.getElementById("device-charts");
    if (!charts) {
      return;
    }
    opened.forEach(function (id) {
      var item = document.getElementById(id);
      if (item && charts.contains(item)) {
        item.open = true;
      }
    });
    if (focused) {
      var again = document.getElementById(focused);
      if (again) {
        var summary = again.tagName === "DETAILS" ? again.querySelector("summary") : again;
        (summary || again).focus();
      }
    }
    opened = [];
    focused = null;
  });
})();
