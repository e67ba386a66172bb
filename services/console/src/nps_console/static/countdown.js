// The queue's live countdown: followup counts the business time left to each open case's
// deadline (its team's hours and holidays) and says until when that time runs like the
// clock (the end of the working day, or the deadline); this only counts it down in between
// and says "Overdue" once the deadline has passed. Past that end, the label stays until
// the next page load (the team is not at work). Same wording and rounding as the server.
(function () {
  "use strict";
  var table = document.getElementById("queue");
  if (!table || !table.dataset.now) { return; }
  var skew = Date.parse(table.dataset.now) - Date.now(); // server clock minus ours
  var loaded = Date.parse(table.dataset.now);
  function label(cell, now) {
    var left = Number(cell.dataset.left) * 1000;
    var runs = cell.dataset.runsUntil ? Date.parse(cell.dataset.runsUntil) : loaded;
    left -= Math.max(0, Math.min(now, runs) - loaded);
    if (now >= Date.parse(cell.dataset.dueAt)) { return [table.dataset.tOverdue, true]; }
    var hours = left / 3600000;
    if (hours < 1) { return [table.dataset.tWithin, false]; }
    var whole = Math.ceil(hours);
    if (whole === 1) { return [table.dataset.tHour, false]; }
    return [table.dataset.tHours.replace("{n}", String(whole)), false];
  }
  function tick() {
    var now = Date.now() + skew;
    table.querySelectorAll("td[data-due-at]").forEach(function (cell) {
      var shown = label(cell, now);
      if (cell.textContent !== shown[0]) { cell.textContent = shown[0]; }
      cell.classList.toggle("overdue", shown[1]);
    });
  }
  tick();
  setInterval(tick, 30000);
})();
