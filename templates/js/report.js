/* mevreport page script: theme toggle, module tree, ranking, op table, links between sections
 * (base.js, run first, holds the document, formatting and the op search).
 * Runs inside load.js's start function: ``payload`` holds the document's JSON text.
 * Every model string reaches the page through textContent or setAttribute,
 * never innerHTML, so names like "</script><img onerror=...>" stay text; the one
 * markup set as HTML is the module table's rows on a large page, written and escaped
 * by the same template as the rows of every other page (render/html.py). */
(function (api) {
  "use strict";
  var doc = api.doc, root = document.documentElement, fmt = api.fmt, el = api.el, isDark = api.isDark;
  var count = fmt.count, nbytes = fmt.nbytes, ms = fmt.ms, num = fmt.num, pct = fmt.pct, shape = fmt.shape, opShort = fmt.opShort;

  /* ---------- theme ---------- */
  var toggle = document.getElementById("theme-toggle");
  function showTheme() {
    toggle.textContent = isDark() ? "Light mode" : "Dark mode";
    toggle.setAttribute("aria-pressed", isDark() ? "true" : "false");
  }
  toggle.addEventListener("click", function () {
    var dark = !isDark();
    root.classList.toggle("dark", dark);
    root.classList.toggle("light", !dark);
    try { localStorage.setItem("mevreport-theme", dark ? "dark" : "light"); } catch (e) { /* file: may forbid */ }
    showTheme();
    if (api.onTheme) api.onTheme();
  });
  showTheme();

  /* ---------- sortable helpers ---------- */
  function bindSort(table, onSort) {
    var heads = table.querySelectorAll("th[data-sort]");
    heads.forEach(function (th) {
      th.tabIndex = 0;
      /* numbers rank largest first on the first click, names A to Z */
      var textual = ["path", "class", "op", "module", "id"].indexOf(th.getAttribute("data-sort")) >= 0;
      function go() {
        var now = th.getAttribute("aria-sort");
        var asc = now ? now !== "ascending" : textual;
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        onSort(th.getAttribute("data-sort"), asc);
      }
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); } });
    });
  }
  function compare(a, b, asc) {
    var r = typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b));
    return asc ? r : -r;
  }

  /* ---------- module tree ---------- */
  (function moduleTree() {
    var table = document.getElementById("module-table");
    if (!table) return;
    var tbody = table.tBodies[0];
    var rows, byPath, children, collapsed = Object.create(null), packed = payload.moduleRows;
    function collect() {
      rows = Array.prototype.slice.call(tbody.rows);
      byPath = Object.create(null); children = Object.create(null);
      rows.forEach(function (tr) {
        var path = tr.dataset.path;
        byPath[path] = tr;
        if (tr.dataset.root !== "1") (children[tr.dataset.parent] = children[tr.dataset.parent] || []).push(tr);
      });
    }
    collect();
    /* A large page starts with the first view's rows only (render/html.py); every row is put in
     * the first time one that is not there may be needed: before expanding, sorting or printing. */
    function allRows() {
      if (packed === null) return;
      tbody.innerHTML = packed;
      packed = null;
      collect();
    }
    function hidden(tr) {
      if (tr.dataset.root === "1") return false;
      var p = tr.dataset.parent;
      while (true) {
        if (collapsed[p]) return true;
        var parent = byPath[p];
        if (!parent || parent.dataset.root === "1") return false;
        p = parent.dataset.parent;
      }
    }
    function refresh() {
      rows.forEach(function (tr) {
        tr.hidden = hidden(tr);
        var b = tr.querySelector(".tree-toggle");
        if (b) {
          var c = !!collapsed[tr.dataset.path];
          b.textContent = c ? "\u25B8" : "\u25BE";
          b.setAttribute("aria-expanded", c ? "false" : "true");
          b.setAttribute("aria-label", (c ? "Expand " : "Collapse ") + (tr.dataset.path || "(root)"));
        }
      });
    }
    function toDepth(d) {
      if (d !== initialDepth) allRows();
      rows.forEach(function (tr) {
        if (tr.querySelector(".tree-toggle")) collapsed[tr.dataset.path] = Number(tr.dataset.depth) >= d;
      });
      refresh();
    }
    tbody.addEventListener("click", function (ev) {
      var b = ev.target.closest(".tree-toggle");
      if (!b) return;
      var path = b.closest("tr").dataset.path;
      allRows();
      collapsed[path] = !collapsed[path];
      refresh();
    });
    var depthSel = document.getElementById("tree-depth"), initialDepth = Number(depthSel.value);
    depthSel.addEventListener("change", function () { toDepth(Number(depthSel.value)); });
    window.addEventListener("beforeprint", function () { toDepth(99); });  /* print shows the whole tree */
    window.addEventListener("afterprint", function () { toDepth(Number(depthSel.value)); });
    toDepth(Number(depthSel.value));
    bindSort(table, function (key, asc) {
      allRows();
      refresh();
      var numeric = key !== "path" && key !== "class";
      function val(tr) { return numeric ? Number(tr.dataset[key]) : (key === "path" ? tr.dataset.path : tr.dataset.class); }
      var ordered = [];
      function walk(tr) {
        ordered.push(tr);
        var kids = (children[tr.dataset.path] || []).slice();
        kids.sort(function (a, b) { return compare(val(a), val(b), asc); });
        kids.forEach(walk);
      }
      rows.filter(function (tr) { return tr.dataset.root === "1"; }).forEach(walk);
      ordered.forEach(function (tr) { tbody.appendChild(tr); });
    });
    api.revealModule = function (path) {
      allRows();
      var tr = byPath[path];
      while (tr && tr.dataset.root !== "1") { collapsed[tr.dataset.parent] = false; tr = byPath[tr.dataset.parent]; }
      refresh();
    };
  })();

  /* ---------- flat ranking: the top N modules at any depth by one figure ---------- */
  (function ranking() {
    var by = document.getElementById("rank-by"), nSel = document.getElementById("rank-n"), table = document.getElementById("rank-table");
    if (!by) return;
    var zero = Object.create(null);  /* a module's zero fraction: that of its last op with statistics, as the graph shows it */
    doc.nodes.forEach(function (n) {
      if (n.stats) api.sharedPrefixes(n.module_path).forEach(function (p) { zero[p] = n.stats.zero_fraction; });
    });
    var FIG = {
      macs: [function (m) { return m.macs; }, count], flops: [function (m) { return m.flops; }, count],
      latency: [function (m) { return m.latency_ms; }, ms], bytes: [function (m) { return m.activation_bytes; }, nbytes],
      zero: [function (m) { return m.path in zero ? zero[m.path] : null; }, pct]
    };
    function draw() {
      var f = FIG[by.value], tbody = table.tBodies[0], rows = doc.modules.filter(function (m) { return m.path && f[0](m) !== null; });
      rows.sort(function (a, b) { return f[0](b) - f[0](a) || a.path.localeCompare(b.path); });
      tbody.textContent = "";
      rows.slice(0, Number(nSel.value)).forEach(function (m, i) {
        var tr = el("tr"), a = el("a");
        tr.appendChild(el("td", String(i + 1), "n"));
        var td = el("td"); a.appendChild(el("code", m.path)); a.href = "#graph-section"; a.className = "plain";
        a.setAttribute("data-goto-module", m.path); td.appendChild(a); tr.appendChild(td);
        tr.appendChild(el("td", m.class_name)); tr.appendChild(el("td", String(m.depth), "n"));
        tr.appendChild(el("td", f[1](f[0](m)), "n"));
        tbody.appendChild(tr);
      });
      if (!rows.length) { var tr = el("tr"), td = el("td", "Not measured for this model.", "muted"); td.colSpan = 5; tr.appendChild(td); tbody.appendChild(tr); }
    }
    by.addEventListener("change", draw); nSel.addEventListener("change", draw);
    draw();
  })();

  /* ---------- op table: client-side, paged ---------- */
  (function opTable() {
    var PAGE = 100, SCREEN_PAGE = 100;
    var table = document.getElementById("op-table");
    var tbody = table.tBodies[0];
    var search = document.getElementById("op-search"), typeSel = document.getElementById("op-type");
    var modIn = document.getElementById("op-module"), countEl = document.getElementById("op-count");
    var pageEl = document.getElementById("op-page");
    var nodes = doc.nodes, view = nodes, page = 0, highlight = -1;
    var types = Object.create(null), paths = Object.create(null);
    nodes.forEach(function (n) { types[opShort(n.op)] = (types[opShort(n.op)] || 0) + 1; paths[n.module_path] = 1; });
    Object.keys(types).sort().forEach(function (t) {
      var o = el("option", t + " (" + types[t] + ")"); o.value = t; typeSel.appendChild(o);
    });
    var dl = document.getElementById("module-paths");
    Object.keys(paths).sort().slice(0, 2000).forEach(function (p) { var o = el("option"); o.value = p; dl.appendChild(o); });
    function key(n, k) {
      var s = n.stats;
      switch (k) {
        case "id": return n.id; case "op": return opShort(n.op); case "module": return n.module_path;
        case "macs": return n.macs === null ? -1 : n.macs; case "flops": return n.flops === null ? -1 : n.flops;
        case "bytes": return n.output_bytes; case "latency": return n.latency_ms === null ? -1 : n.latency_ms;
        case "mean": return s && s.mean !== null ? s.mean : -Infinity; case "std": return s && s.std !== null ? s.std : -1;
        case "absmax": return s && s.abs_max !== null ? s.abs_max : -1; case "zero": return s ? s.zero_fraction : -1;
        case "nan": return s ? s.nan_count + s.inf_count : -1;
      }
      return 0;
    }
    var sortKey = "id", sortAsc = true;
    function apply() {
      var q = search.value.trim(), t = typeSel.value, m = modIn.value.trim(), match = api.opMatcher(q);
      view = nodes.filter(function (n) {
        if (t && opShort(n.op) !== t) return false;
        if (m && !(n.module_path === m || n.module_path.indexOf(m + ".") === 0 || (m.slice(-1) === "." && n.module_path.indexOf(m) === 0))) return false;
        return !q || match(n);
      });
      if (!(sortKey === "id" && sortAsc)) view = view.slice().sort(function (a, b) { return compare(key(a, sortKey), key(b, sortKey), sortAsc); });
      draw();
    }
    function cell(tr, text, numeric, title) {
      var td = el("td", text, numeric ? "n" : null);
      if (title) td.title = title;
      tr.appendChild(td);
      return td;
    }
    function draw() {
      var pages = Math.max(1, Math.ceil(view.length / PAGE));
      page = Math.min(page, pages - 1);
      tbody.textContent = "";
      view.slice(page * PAGE, page * PAGE + PAGE).forEach(function (n) {
        var tr = el("tr");
        tr.id = "op-" + n.id;
        if (n.id === highlight) tr.className = "hl";
        var s = n.stats;
        cell(tr, String(n.id), true);
        var opTd = cell(tr, "", false, n.op);
        var a = el("a", opShort(n.op)); a.href = "#graph-section"; a.setAttribute("data-goto-graph", String(n.id));
        opTd.appendChild(a);
        if (n.uncounted) opTd.appendChild(el("span", " (no cost rule)", "muted"));
        cell(tr, n.module_path || "(root)", false).className = "mono";
        cell(tr, n.outputs.map(function (o) { return shape(o.shape) + (o.dtype !== "float32" ? " " + o.dtype : ""); }).join(", "), false);
        cell(tr, count(n.macs), true); cell(tr, count(n.flops), true); cell(tr, nbytes(n.output_bytes), true);
        cell(tr, ms(n.latency_ms), true);
        cell(tr, s ? num(s.mean) : "\u2014", true); cell(tr, s ? num(s.std) : "\u2014", true);
        cell(tr, s ? num(s.abs_max) : "\u2014", true); cell(tr, s ? pct(s.zero_fraction) : "\u2014", true);
        cell(tr, s ? String(s.nan_count + s.inf_count) : "\u2014", true);
        tbody.appendChild(tr);
      });
      countEl.textContent = view.length.toLocaleString("en-US") + " of " + nodes.length.toLocaleString("en-US") + " ops"
        + (nodes.length && !view.length ? ": no match" : "");
      pageEl.textContent = "page " + (page + 1) + " of " + pages;
      document.getElementById("op-prev").disabled = page === 0;
      document.getElementById("op-next").disabled = page >= pages - 1;
    }
    [search, modIn].forEach(function (i) { i.addEventListener("input", function () { page = 0; apply(); }); });
    typeSel.addEventListener("change", function () { page = 0; apply(); });
    document.getElementById("op-prev").addEventListener("click", function () { page--; draw(); });
    document.getElementById("op-next").addEventListener("click", function () { page++; draw(); });
    bindSort(table, function (k, asc) { sortKey = k; sortAsc = asc; page = 0; apply(); });
    /* print gives every row, not the page on screen */
    window.addEventListener("beforeprint", function () { PAGE = Math.max(1, view.length); page = 0; draw(); });
    window.addEventListener("afterprint", function () { PAGE = SCREEN_PAGE; draw(); });
    api.showOp = function (id) {
      search.value = ""; typeSel.value = ""; modIn.value = ""; highlight = id;
      apply();
      var idx = view.findIndex(function (n) { return n.id === id; });
      page = Math.floor(Math.max(idx, 0) / PAGE);
      draw();
      var tr = document.getElementById("op-" + id);
      if (tr) { tr.scrollIntoView({ block: "center" }); }
      document.getElementById("ops").scrollIntoView();
      if (tr) tr.scrollIntoView({ block: "nearest" });
    };
    apply();
  })();

  /* ---------- links: warnings and table rows to graph / op table ---------- */
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest("[data-goto-op], [data-goto-graph], [data-goto-module]");
    if (!a) return;
    ev.preventDefault();
    if (a.hasAttribute("data-goto-op")) api.showOp(Number(a.getAttribute("data-goto-op")));
    else if (a.hasAttribute("data-goto-module")) { if (api.showModuleInGraph) api.showModuleInGraph(a.getAttribute("data-goto-module")); }
    else if (api.showNodeInGraph) api.showNodeInGraph(Number(a.getAttribute("data-goto-graph")));
  });

  var dl = document.getElementById("download-json");
  if (dl) dl.addEventListener("click", function () {
    var blob = new Blob([payload.doc], { type: "application/json" });
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = (doc.model.name || "report").replace(/[^A-Za-z0-9_.-]+/g, "_") + ".json";
    a.click();
  });
})(mevreport);
