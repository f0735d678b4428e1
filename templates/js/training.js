/* Training pages only (DESIGN §6): a Phase column in the op table.  The table is
 * drawn by report.js from the embedded document; each redraw is observed and
 * every row gets its node's phase (absent means forward), written as text. */
"use strict";
(function () {
  var table = document.getElementById("op-table");
  if (!table || !window.mevreport) return;
  var phase = Object.create(null);
  mevreport.doc.nodes.forEach(function (n) { phase[n.id] = n.phase || "forward"; });
  var tbody = table.tBodies[0];
  function mark() {
    Array.prototype.forEach.call(tbody.rows, function (tr) {
      if (!tr.id || tr.querySelector("td.phase")) return;
      var p = phase[Number(tr.id.slice(3))] || "forward";
      var td = mevreport.el("td", p, "phase phase-" + p);
      tr.insertBefore(td, tr.cells[2] || null);
    });
  }
  new MutationObserver(mark).observe(tbody, { childList: true });
  mark();
})();
