/* mevreport page loader: hands the embedded report document to the page scripts.
 * A plain document (application/json) is handed over at once, so small pages start as they
 * always did.  A large one is gzip + base64 (render/embed.py): it is inflated with the
 * browser's own DecompressionStream (no library, no network), together with the module
 * table's rows when the page carries them packed, and the scripts start when both are text. */
"use strict";
function mevreportLoad(start, id) {  /* id: the document's element (the diff page's graph of HEAD has its own) */
  function inflate(el) {
    var bin = atob(el.textContent), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text();
  }
  var data = document.getElementById(id || "mevreport-data"), rows = document.getElementById("mevreport-module-rows");
  if (data.type === "application/json") { start({ doc: data.textContent, moduleRows: null }); return; }
  Promise.all([inflate(data), rows ? inflate(rows).then(JSON.parse) : null]).then(function (texts) {
    start({ doc: texts[0], moduleRows: texts[1] });
  }).catch(function (err) {
    var p = document.createElement("p");
    p.className = "alert";
    p.textContent = "This browser could not unpack the report's data (" + err + "); a current Chrome, Edge, Firefox or Safari can.";
    document.body.insertBefore(p, document.body.firstChild);
  });
}
