/* mevreport graph, part 3: views (expand, collapse, depth), details panel, search, keys, export,
 * and the documented page API window.mevreport (docs/report.md). */
(function (api) {
  "use strict";
  var G = api.graphCore, U = api.graphUi, S = G.scene, fmt = api.fmt, el = api.el, view = G.view;
  var byId = G.byId, classes = G.classes, panel = document.getElementById("panel");
  var firstDepth = G.chooseDepth(view.max_units);

  function setView(openSet, keep, opened) {
    if (opened !== undefined) G.expandIn(openSet, opened); else G.build(openSet);
    U.colours();
    document.getElementById("graph-count").textContent = S.units.length.toLocaleString("en-US") + " boxes (layout "
      + S.layoutMs.toFixed(0) + " ms)";
    if (!keep) U.initialView(); else U.redraw();
    if (search.matches.length) markMatches();
  }
  /* a copy of the open set to change and pass to setView (keyed by path: no prototype) */
  function openNow() { return Object.assign(Object.create(null), S.open); }
  function unitOfNode(id) { return S.unitOf[id] || null; }
  function inside(u, path) {
    var p = u.module ? G.unitPath(u.key) : byId[u.ids[0]].module_path;
    return path === "" || p === path || p.indexOf(path + ".") === 0;
  }
  function expand(path) {
    var o = openNow(); o[path] = true;
    setView(o, true, path);
    var first = S.units.filter(function (u) { return inside(u, path); })[0];
    if (first) select(first.key);
  }
  function collapse(path) {
    var o = openNow();
    Object.keys(o).forEach(function (p) { if ((p === path || p.indexOf(path + ".") === 0) && p in classes) delete o[p]; });
    setView(o, true);
    var again = S.units.filter(function (u) { return u.module && G.unitPath(u.key) === path; })[0];
    if (again) select(again.key);
  }
  function reveal(id) {
    var o = openNow();
    G.prefixes(byId[id].module_path).forEach(function (p) { o[p] = true; });
    setView(o, true);
  }
  function select(key, centre) {
    if (!S.byKey[key]) return false;
    S.selected = key;
    if (centre !== false) U.centreOn(S.byKey[key], 0.8); else U.redraw();
    showPanel(key);
    return true;
  }

  /* ---------- details panel ---------- */
  function dl(pairs) {
    var d = el("dl");
    pairs.forEach(function (p) { d.appendChild(el("dt", p[0])); var dd = el("dd"); if (typeof p[1] === "string") dd.textContent = p[1]; else dd.appendChild(p[1]); d.appendChild(dd); });
    return d;
  }
  function button(text, fn) { var b = el("button", text); b.type = "button"; b.addEventListener("click", fn); return b; }
  function opLinks(ids) {
    var span = el("span");
    if (!ids.length) span.textContent = "\u2014";
    ids.slice(0, 12).forEach(function (id, i) {
      var a = el("a", fmt.opShort(byId[id].op) + " #" + id); a.href = "#graph-section"; a.setAttribute("data-goto-graph", String(id));
      if (i) span.appendChild(document.createTextNode(", "));
      span.appendChild(a);
    });
    if (ids.length > 12) span.appendChild(document.createTextNode(" and " + (ids.length - 12) + " more"));
    return span;
  }
  function histogram(stats) {
    var NS = "http://www.w3.org/2000/svg", h = stats.histogram, svg = document.createElementNS(NS, "svg");
    svg.setAttribute("class", "hist"); svg.setAttribute("viewBox", "0 0 300 90"); svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img"); svg.setAttribute("aria-label", "activation histogram");
    var max = Math.max.apply(null, h.counts.concat([1])), w = 300 / h.counts.length;
    h.counts.forEach(function (c, i) {
      var r = document.createElementNS(NS, "rect"), hh = c ? Math.max(1, 78 * c / max) : 0;
      r.setAttribute("x", (i * w + 0.5).toFixed(2)); r.setAttribute("width", Math.max(0.5, w - 1).toFixed(2));
      r.setAttribute("y", (80 - hh).toFixed(2)); r.setAttribute("height", hh.toFixed(2)); r.setAttribute("fill", "currentColor");
      svg.appendChild(r);
    });
    var wrapEl = el("div"), ends = el("div", null, "muted mono");
    wrapEl.appendChild(svg);
    ends.style.display = "flex"; ends.style.justifyContent = "space-between";
    ends.appendChild(el("span", fmt.num(h.min))); ends.appendChild(el("span", fmt.num(h.max)));
    wrapEl.appendChild(ends);
    return wrapEl;
  }
  var paramsOf = Object.create(null);
  api.doc.modules.forEach(function (m) { paramsOf[m.path] = m.params; });
  function showPanel(key) {
    var u = S.byKey[key];
    panel.textContent = "";
    if (!u) { panel.appendChild(el("p", "Click a box in the graph to see its details.", "muted")); return; }
    var f = u.fig, out = f.out, path = u.module ? G.unitPath(key) : out.module_path, pairs = [];
    panel.appendChild(el("h3", u.module ? path : fmt.opShort(out.op) + " (node " + out.id + ")"));
    if (u.module) {
      var g = view.groups[path];
      pairs.push(["class", classes[path] || ""], ["params", fmt.count(paramsOf[path])]);
      if (g) pairs.push(["repeated", "\u00d7" + g[1] + " alike (same class, ops, MACs, params)"]);
      pairs.push(["ops", String(u.ids.length)]);
    } else {
      pairs.push(["op", out.op], ["module", (out.module_path || "(root)") + (classes[out.module_path] ? " (" + classes[out.module_path] + ")" : "")]);
      if (out.module_path in paramsOf) pairs.push(["module params", fmt.count(paramsOf[out.module_path])]);
      if (out.args) Object.keys(out.args).forEach(function (k) { pairs.push([k, JSON.stringify(out.args[k])]); });
      pairs.push(["inputs", opLinks(out.inputs)], ["consumers", opLinks(G.consumersOf[out.id])]);
    }
    pairs.push(["MACs", fmt.count(f.macs)], ["FLOPs", fmt.count(f.flops)], ["output bytes", fmt.nbytes(f.bytes)], ["latency", fmt.ms(f.latency)]);
    pairs.push([u.module ? "last output" : "output", out.outputs.map(function (o) { return fmt.shape(o.shape) + " " + o.dtype; }).join(", ") || "\u2014"]);
    panel.appendChild(dl(pairs));
    var sn = u.module ? f.statsNode : (out.stats ? out : null);
    if (sn) {
      var s = sn.stats;
      panel.appendChild(el("h3", "Activations" + (u.module ? " (node " + sn.id + ", " + fmt.opShort(sn.op) + ")" : "")));
      panel.appendChild(dl([["mean", fmt.num(s.mean)], ["std", fmt.num(s.std)], ["min / max", fmt.num(s.min) + " / " + fmt.num(s.max)],
                            ["zeros", fmt.pct(s.zero_fraction)], ["NaN / Inf", s.nan_count + " / " + s.inf_count]]));
      if (s.histogram) panel.appendChild(histogram(s));
    } else panel.appendChild(el("p", "No activation statistics for this output (not floating point, or not measured).", "muted"));
    var actions = el("div", null, "actions");
    if (u.module) actions.appendChild(button("Expand " + G.short(path), function () { expand(path); }));
    G.prefixes(u.module ? path.split(".").slice(0, -1).join(".") : out.module_path).reverse().forEach(function (p) {
      if (S.open[p] && p in classes) actions.appendChild(button("Collapse " + G.short(p), function () { collapse(p); }));
    });
    if (!api.showOp) { /* a page without an op table (the diff page) */ }
    else if (u.module) actions.appendChild(button("Filter op table", function () {
      var m = document.getElementById("op-module"); m.value = path; m.dispatchEvent(new Event("input"));
      document.getElementById("ops").scrollIntoView();
    }));
    else actions.appendChild(button("Show in op table", function () { api.showOp(out.id); }));
    if (api.unitNote) { var note = api.unitNote(u); if (note) panel.insertBefore(el("p", note, "change-note"), panel.children[1] || null); }
    panel.appendChild(actions);
  }

  /* ---------- search ---------- */
  var search = { matches: [], at: -1 }, status = document.getElementById("graph-search-status");
  function markMatches() {
    S.marked = Object.create(null);
    search.matches.forEach(function (id) { var u = unitOfNode(id); if (u) S.marked[u.key] = true; });
  }
  function go(step) {
    if (!search.matches.length) return;
    search.at = (search.at + step + search.matches.length) % search.matches.length;
    var id = search.matches[search.at];
    reveal(id);
    markMatches();
    select("n" + id);
    status.textContent = (search.at + 1) + " of " + search.matches.length + " ops";
  }
  function runSearch(text) {
    text = String(text || "").trim();
    search.at = -1;
    search.matches = text ? api.doc.nodes.filter(api.opMatcher(text)).map(function (n) { return n.id; }) : [];
    S.marked = Object.create(null);
    if (!text) status.textContent = "";
    else if (!search.matches.length) { status.textContent = "No match for \u201c" + text + "\u201d"; U.redraw(); }
    else go(1);
    return search.matches.length;
  }
  var box = document.getElementById("graph-search");
  box.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") { ev.preventDefault(); if (search.text !== box.value) { search.text = box.value; runSearch(box.value); } else go(ev.shiftKey ? -1 : 1); }
  });
  document.getElementById("graph-search-next").addEventListener("click", function () { if (search.text !== box.value) { search.text = box.value; runSearch(box.value); } else go(1); });
  document.getElementById("graph-search-prev").addEventListener("click", function () { go(-1); });

  /* ---------- keys: work once a box is selected, wherever the focus is (but not in a form field) ---------- */
  function neighbour(u, dc) {
    var best = null;
    S.units.forEach(function (v) { if (v.layer === u.layer && (v.col - u.col) * dc > 0 && (!best || Math.abs(v.col - u.col) < Math.abs(best.col - u.col))) best = v; });
    return best;
  }
  document.addEventListener("keydown", function (ev) {
    var t = ev.target, tag = t && t.tagName;
    if (!S.selected || ev.altKey || ev.ctrlKey || ev.metaKey || tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || tag === "BUTTON" || tag === "A") return;
    var u = S.byKey[S.selected], next = null;
    if (ev.key === "ArrowDown") next = u.outs.length ? S.byKey[u.outs[0]] : null;
    else if (ev.key === "ArrowUp") next = u.inputs.length ? S.byKey[u.inputs[0]] : null;
    else if (ev.key === "ArrowLeft") next = neighbour(u, -1);
    else if (ev.key === "ArrowRight") next = neighbour(u, 1);
    else if (ev.key === "Enter" && u.module) { ev.preventDefault(); expand(G.unitPath(u.key)); return; }
    else if (ev.key === "Escape") {
      var p = G.prefixes(u.module ? G.unitPath(u.key).split(".").slice(0, -1).join(".") : byId[u.ids[0]].module_path)
        .filter(function (q) { return q in classes; }).pop();
      if (p) { ev.preventDefault(); collapse(p); }
      return;
    } else return;
    ev.preventDefault();
    if (next) select(next.key);
  });

  /* ---------- export: the whole graph, not the view ---------- */
  function escapeXml(s) { return String(s).replace(/[<>&"']/g, function (c) { return { "<": "&lt;", ">": "&gt;", "&": "&amp;", "\"": "&quot;", "'": "&apos;" }[c]; }); }
  function exportSize() {
    var b = S.bounds, w = b.x1 - b.x0 + 40, h = b.y1 - b.y0 + 40, s = Math.min(1, 16000 / w, 16000 / h, Math.sqrt(2.0e8 / (w * h)));
    return { width: Math.max(1, Math.round(w * s)), height: Math.max(1, Math.round(h * s)), scale: s };
  }
  function exportPNG() {
    var z = exportSize(), c = document.createElement("canvas"), b = S.bounds;
    c.width = z.width; c.height = z.height;
    var cx = c.getContext("2d");
    G.paint(cx, z.scale, z.scale * (20 - b.x0), z.scale * (20 - b.y0), z.width, z.height, U.theme(), true);
    return c.toDataURL("image/png");
  }
  function exportSVG() {
    var b = S.bounds, w = Math.round(b.x1 - b.x0 + 40), h = Math.round(b.y1 - b.y0 + 40), ox = 20 - b.x0, oy = 20 - b.y0, th = U.theme();
    var out = ['<svg xmlns="http://www.w3.org/2000/svg" width="' + w + '" height="' + h + '" viewBox="0 0 ' + w + " " + h + '" font-family="monospace" font-size="12">',
      '<rect width="100%" height="100%" fill="' + th.bg + '"/><g stroke="' + th.edge + '">'];
    S.edges.forEach(function (e) { out.push('<line x1="' + (e.a.x + ox) + '" y1="' + (e.a.y + G.BH / 2 + oy) + '" x2="' + (e.b.x + ox) + '" y2="' + (e.b.y - G.BH / 2 + oy) + '"' + (e.faint ? ' stroke-opacity="0.25"' : "") + "/>"); });
    out.push('</g><g stroke="' + th.border + '" text-anchor="middle">');
    S.units.forEach(function (u) {
      var x = u.x + ox, y = u.y + oy;
      out.push('<g><title>' + escapeXml(u.desc.title) + '</title><rect x="' + (x - G.BW / 2) + '" y="' + (y - G.BH / 2) + '" width="' + G.BW + '" height="' + G.BH + '" fill="' + (S.colours[u.key] || th.box) + '"'
        + (u.module ? ' stroke-dasharray="5 3"' : "") + '/><text x="' + x + '" y="' + (y - 4) + '" stroke="none" fill="' + th.text + '">' + escapeXml(u.desc.lines[0])
        + '</text><text x="' + x + '" y="' + (y + 13) + '" stroke="none" fill="' + th.text + '">' + escapeXml(u.desc.lines[1]) + "</text></g>");
    });
    out.push("</g></svg>");
    return out.join("");
  }
  function download(name, href) { var a = document.createElement("a"); a.href = href; a.download = name; document.body.appendChild(a); a.click(); a.remove(); }
  document.getElementById("graph-svg").addEventListener("click", function () {
    download("graph.svg", URL.createObjectURL(new Blob([exportSVG()], { type: "image/svg+xml" })));
  });
  document.getElementById("graph-png").addEventListener("click", function () { download("graph.png", exportPNG()); });

  /* ---------- controls ---------- */
  var depthSel = document.getElementById("graph-depth"), deepest = 0;
  api.doc.modules.forEach(function (m) { if (m.depth > deepest) deepest = m.depth; });
  for (var d = 1; d <= deepest; d++) { var o = el("option", "depth " + d); o.value = String(d); depthSel.appendChild(o); }
  var all = el("option", "every op"); all.value = "all"; depthSel.appendChild(all);
  depthSel.value = firstDepth === null ? "all" : String(firstDepth);
  depthSel.addEventListener("change", function () { expandToDepth(depthSel.value === "all" ? null : Number(depthSel.value)); });
  function expandToDepth(n) {
    depthSel.value = n === null ? "all" : String(n);  /* the control says what is shown, whoever asked */
    setView(G.openForDepth(n), false); showPanel(null); return S.units.length;
  }
  function expandAll() { return expandToDepth(null); }
  function collapseAll() { return expandToDepth(1); }
  document.getElementById("graph-expand-all").addEventListener("click", expandAll);
  document.getElementById("graph-collapse-all").addEventListener("click", collapseAll);
  document.getElementById("color-by").addEventListener("change", function (ev) { U.setColorBy(ev.target.value); });
  document.getElementById("graph-fit").addEventListener("click", U.fitAll);
  document.getElementById("graph-reset").addEventListener("click", function () {
    depthSel.value = firstDepth === null ? "all" : String(firstDepth); setView(G.openForDepth(firstDepth), false); showPanel(null);
  });
  api.onTheme = U.redraw;
  /* print gives the whole graph as one image, not the view on screen */
  window.addEventListener("beforeprint", function () {
    var img = document.getElementById("graph-print");
    if (!img) { img = document.createElement("img"); img.id = "graph-print"; img.alt = "the whole graph"; document.querySelector(".graph-wrap").before(img); }
    img.src = exportPNG();
  });

  api.showNodeInGraph = function (id) {
    if (!byId[id]) return;
    reveal(id);
    document.getElementById("graph-section").scrollIntoView();
    select("n" + id);
  };
  api.showModuleInGraph = function (path) {
    var o = openNow();
    G.prefixes(path).slice(0, -1).forEach(function (p) { o[p] = true; });
    setView(o, true);
    document.getElementById("graph-section").scrollIntoView();
    var keys = S.units.filter(function (u) { return inside(u, path); }).map(function (u) { return u.key; });
    if (!keys.length) return;
    select(keys[0]);
    S.marked = Object.create(null); if (keys.length > 1) keys.forEach(function (k) { S.marked[k] = true; });
    U.redraw();
  };
  /* Internals for tests and the API below: unit keys, selection, where a box is on screen. */
  api.graph = {
    units: function () { return S.units.map(function (u) { return u.key; }); },
    selected: function () { return S.selected; },
    marked: function () { return Object.keys(S.marked).sort(); },
    position: function (key) { var u = S.byKey[key]; return u ? { x: u.x, y: u.y } : null; },
    screen: function (key) { var u = S.byKey[key]; return { x: U.cam.x + U.cam.s * u.x, y: U.cam.y + U.cam.s * u.y }; },
    focus: function (key, scale) { var u = S.byKey[key]; U.cam.s = scale || 1; U.centreOn(u, U.cam.s); },
    layoutFor: function (openList) { var o = Object.create(null); openList.forEach(function (p) { o[p] = true; }); return G.layout(G.unitsFor(o)); },
    showPanel: showPanel, expand: expand, collapse: collapse, select: select, exportSize: exportSize,
    camera: U.cam, zoomAt: U.zoomAt, fit: U.fitAll, redraw: U.redraw, layoutMs: function () { return S.layoutMs; },
    firstDepth: firstDepth
  };
  /* The documented page API (docs/report.md, DESIGN §4). */
  api.expandAll = expandAll;
  api.collapseAll = collapseAll;
  api.expandToDepth = expandToDepth;
  api.search = runSearch;
  api.select = function (nodeId) {
    var key = typeof nodeId === "number" || /^\d+$/.test(String(nodeId)) ? "n" + nodeId : String(nodeId);
    if (!S.byKey[key] && key.charAt(0) === "n" && byId[Number(key.slice(1))]) reveal(Number(key.slice(1)));
    return select(key);
  };
  api.exportSVG = exportSVG;
  api.exportPNG = exportPNG;
  setView(G.openForDepth(firstDepth), false);
  document.getElementById("graph-depth-note").textContent = firstDepth === null ? "One box per executed op"
    : "Modules at depth " + firstDepth + " are drawn as one box each (" + S.units.length + " boxes at first)";
  U.engage(false);
})(mevreport);
