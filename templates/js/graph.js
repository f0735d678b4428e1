/* mevreport graph: vis-network with positions from Python, physics off.
 * unitsFor() and layout() mirror mevreport/render/graphview.py line for line, so
 * expanding or collapsing a module re-lays the graph out exactly as Python would. */
(function (api) {
  "use strict";
  var doc = api.doc, fmt = api.fmt, el = api.el;
  var view = JSON.parse(document.getElementById("mevreport-view").textContent);
  var container = document.getElementById("graph");
  var panel = document.getElementById("panel");
  var nodes = doc.nodes, byId = {};
  nodes.forEach(function (n) { byId[n.id] = n; });
  var classes = {};
  doc.modules.forEach(function (m) { classes[m.path] = m.class_name; });
  var open = {};
  view.open.forEach(function (p) { open[p] = true; });
  var units = [], unitByKey = {}, colorBy = "group";
  var GROUP_COLORS = ["#ffd6a5", "#b9f0b0", "#9be7f5", "#cdc4ff", "#ffc6f0", "#f3f7a8", "#a9c9ff", "#ffb3b3"];
  var RAMP = ["#e6efff", "#bcd4ff", "#ffe08a", "#ffab5e", "#ff6f5a"];
  var MISSING = "#d9dde4";
  var FAN = 8;

  function prefixes(path) {
    if (!path) return [];
    var parts = path.split("."), out = [];
    for (var i = 0; i < parts.length; i++) out.push(parts.slice(0, i + 1).join("."));
    return out;
  }
  function unitKey(path, id, openSet, call) {
    var ps = prefixes(path);
    for (var i = 0; i < ps.length; i++) if (!openSet[ps[i]]) return "m:" + ps[i] + (call && ps[i] === path ? "#" + call : "");
    return "n" + id;
  }
  function unitPath(key) { return key.slice(2).split("#")[0]; }
  function unitsFor(openSet) {
    var order = [], members = {}, inputs = {}, unitOf = {};
    nodes.forEach(function (n) {
      var key = unitKey(n.module_path, n.id, openSet, n.module_call);
      unitOf[n.id] = key;
      if (!members[key]) { members[key] = []; inputs[key] = []; order.push(key); }
      members[key].push(n.id);
      n.inputs.forEach(function (src) {
        var s = unitOf[src];
        if (s !== undefined && s !== key && inputs[key].indexOf(s) < 0) inputs[key].push(s);
      });
    });
    return order.map(function (k) { return { key: k, ids: members[k], inputs: inputs[k] }; });
  }
  function nearestFree(taken, want) {
    var n = Object.keys(taken).length;
    for (var step = 0; step <= n; step++) {
      if (!taken[want + step]) return want + step;
      if (!taken[want - step]) return want - step;
    }
    return want + n + 1;
  }
  function anchors(us) {
    var out = {}, following = null, previous = null, i;
    for (i = us.length - 1; i >= 0; i--) { out[us[i].key] = following; if (us[i].inputs.length) following = us[i].key; }
    for (i = 0; i < us.length; i++) { if (out[us[i].key] === null) out[us[i].key] = previous; if (us[i].inputs.length) previous = us[i].key; }
    return out;
  }
  function layout(us) {
    var consumers = {}, layer = {}, col = {}, taken = {};
    us.forEach(function (u) { consumers[u.key] = []; });
    us.forEach(function (u) { u.inputs.forEach(function (s) { consumers[s].push(u.key); }); });
    var sources = us.filter(function (u) { return u.inputs.length === 0; });
    us.forEach(function (u) {
      if (!u.inputs.length) return;
      var best = 0;
      u.inputs.forEach(function (s) { if (s in layer && layer[s] > best) best = layer[s]; });
      layer[u.key] = 1 + best;
    });
    var anchor = anchors(us);
    sources.forEach(function (u) {
      var below = consumers[u.key].filter(function (c) { return c in layer; }).map(function (c) { return layer[c]; });
      if (below.length) layer[u.key] = Math.max(0, Math.min.apply(null, below) - 1);
      else layer[u.key] = anchor[u.key] ? layer[anchor[u.key]] : 0;
    });
    var wanted = {};
    function place(u, refs) {
      var placed = refs.filter(function (s) { return s in col; }).map(function (s) { return col[s]; });
      var want = placed.length ? Math.floor(placed.reduce(function (a, b) { return a + b; }, 0) / placed.length + 0.5) : 0;
      var row = taken[layer[u.key]] = taken[layer[u.key]] || {};
      col[u.key] = nearestFree(row, want);
      wanted[u.key] = want;
      row[col[u.key]] = true;
    }
    function tidy(keys) {
      var groups = {};
      keys.forEach(function (k) { (groups[wanted[k]] = groups[wanted[k]] || []).push(k); });
      Object.keys(groups).forEach(function (w) {
        var ks = groups[w], cs = ks.map(function (k) { return col[k]; }).sort(function (a, b) { return a - b; });
        ks.forEach(function (k, i) { col[k] = cs[i]; });
      });
    }
    var current = [];
    us.filter(function (u) { return u.inputs.length > 0; })
      .sort(function (a, b) { return layer[a.key] - layer[b.key]; })
      .forEach(function (u) {
        if (current.length && layer[current[0]] !== layer[u.key]) { tidy(current); current = []; }
        place(u, u.inputs);
        current.push(u.key);
      });
    tidy(current);
    sources.forEach(function (u) { place(u, consumers[u.key].length ? consumers[u.key] : (anchor[u.key] ? [anchor[u.key]] : [])); });
    var out = {};
    Object.keys(col).forEach(function (k) { out[k] = [col[k], layer[k]]; });
    return out;
  }
  function short(text) {
    var n = view.label_chars;
    return text.length <= n ? text : "\u2026" + text.slice(text.length - (n - 1));
  }

  /* unit figures for colouring and the panel */
  function figures(u) {
    var f = { macs: 0, flops: 0, bytes: 0, latency: null, nan: 0, zero: null, out: byId[u.ids[u.ids.length - 1]], statsNode: null };
    var untimed = 0;
    u.ids.forEach(function (id) {
      var n = byId[id];
      f.macs += n.macs || 0; f.flops += n.flops || 0; f.bytes += n.output_bytes;
      if (n.latency_ms !== null) f.latency = (f.latency || 0) + n.latency_ms; else untimed += 1;
      if (n.stats) { f.nan += n.stats.nan_count + n.stats.inf_count; f.statsNode = n; }
    });
    if (untimed) f.latency = null;  /* a partial sum is a figure nobody measured */
    if (f.statsNode) f.zero = f.statsNode.stats.zero_fraction;
    return f;
  }
  function describe(u) {
    var f = u.fig;
    if (u.key.charAt(0) === "m") {
      var path = unitPath(u.key), g = view.groups[path], call = u.key.indexOf("#") > 0 ? u.key.split("#")[1] : null;
      return {
        label: short(path) + "\n" + short(classes[path] || "") + (g ? " \u00d7" + g[1] : "") + (call ? " (call " + call + ")" : ""),
        title: path + " (" + (classes[path] || "") + "): " + u.ids.length + " ops, " + fmt.count(f.macs, "MACs") + ", " + fmt.nbytes(f.bytes)
      };
    }
    var n = f.out;
    return {
      label: fmt.opShort(n.op) + "\n" + (n.outputs.length ? fmt.shape(n.outputs[0].shape) : ""),
      title: n.op + " in " + (n.module_path || "(root)") + ": " + fmt.count(f.macs, "MACs") + ", " + fmt.nbytes(f.bytes)
    };
  }
  function metric(u) {
    var f = u.fig;
    switch (colorBy) {
      case "macs": return f.macs || null; case "latency": return f.latency || null;
      case "bytes": return f.bytes || null; case "zero": return f.zero; case "nan": return f.nan;
    }
    return null;
  }
  function colours() {
    var out = {}, vals = units.map(metric), log = colorBy === "macs" || colorBy === "latency" || colorBy === "bytes";
    var finite = vals.filter(function (v) { return v !== null && v > 0; }).map(function (v) { return log ? Math.log(v) : v; });
    var lo = finite.length ? Math.min.apply(null, finite) : 0, hi = finite.length ? Math.max.apply(null, finite) : 1;
    if (colorBy === "zero") { lo = 0; hi = 1; }
    units.forEach(function (u, i) {
      var c;
      if (colorBy === "group") {
        if (u.key.charAt(0) === "m") {
          var g = view.groups[unitPath(u.key)];
          c = g ? GROUP_COLORS[g[0] % GROUP_COLORS.length] : "#dbe7ff";
        } else c = u.fig.macs ? "#c9dcff" : "#eceff4";
      } else if (colorBy === "nan") {
        c = u.fig.statsNode ? (u.fig.nan ? "#ff5f56" : "#c8ecd0") : MISSING;
      } else {
        var v = vals[i];
        if (v === null || (v <= 0 && colorBy !== "zero")) c = MISSING;
        else {
          var t = hi > lo ? ((log ? Math.log(v) : v) - lo) / (hi - lo) : 1;
          c = RAMP[Math.min(RAMP.length - 1, Math.floor(t * RAMP.length))];
        }
      }
      out[u.key] = c;
    });
    return out;
  }
  function legend() {
    var lg = document.getElementById("legend");
    lg.textContent = "";
    if (colorBy === "group") { lg.textContent = "same colour and \u00d7N: repeated blocks; blue ops do MACs"; return; }
    if (colorBy === "nan") { lg.textContent = "red: NaN or Inf in outputs; grey: no statistics"; return; }
    var ramp = el("span", null, "ramp");
    ramp.style.background = "linear-gradient(to right," + RAMP.join(",") + ")";
    lg.appendChild(el("span", colorBy === "zero" ? "0%" : "low"));
    lg.appendChild(ramp);
    lg.appendChild(el("span", (colorBy === "zero" ? "100% zeros" : "high (log scale)") + "; grey: none or not measured"));
  }
  function visNode(u, pos, colour, base) {
    var d = base || describe(u);
    return {
      id: u.key, label: d.label, title: d.title, x: pos[0] * view.x_step, y: pos[1] * view.y_step,
      shape: "box", physics: false, margin: 7,
      borderWidth: u.key.charAt(0) === "m" ? 2 : 1,
      shapeProperties: { borderDashes: u.key.charAt(0) === "m" ? [5, 3] : false },
      color: { background: colour, border: "#5b6b85", highlight: { background: colour, border: "#d6336c" } },
      font: { face: "ui-monospace, Menlo, monospace", size: 12, color: "#1d2330", multi: false }
    };
  }

  var data = { nodes: new vis.DataSet(), edges: new vis.DataSet() };
  var network = null;
  api.firstDraw = null;
  function build(first) {
    units = unitsFor(open);
    unitByKey = {};
    units.forEach(function (u) { u.fig = figures(u); unitByKey[u.key] = u; });
    var pos = layout(units), cs = colours(), initial = {};
    if (first) view.nodes.forEach(function (n) { initial[n.id] = n; });
    var vn = units.map(function (u) {
      var p = initial[u.key];
      if (p) return visNode(u, [p.x / view.x_step, p.y / view.y_step], cs[u.key], { label: p.label, title: p.title });
      return visNode(u, pos[u.key], cs[u.key]);
    });
    var ve = [], fanout = {};
    units.forEach(function (u) { u.inputs.forEach(function (s) { fanout[s] = (fanout[s] || 0) + 1; }); });
    units.forEach(function (u) {
      u.inputs.forEach(function (s) {
        // a tensor read by many boxes (an attention mask, a position table) is drawn faint, not as a dark fan
        var e = { from: s, to: u.key, arrows: "to" };
        if (fanout[s] >= FAN) { e.color = { color: "rgba(138,148,166,0.22)", highlight: "#d6336c" }; e.dashes = [4, 4]; }
        ve.push(e);
      });
    });
    data.nodes.clear(); data.edges.clear();
    data.nodes.add(vn); data.edges.add(ve);
    document.getElementById("graph-count").textContent = units.length + " boxes";
    legend();
  }
  function recolour() {
    var cs = colours();
    data.nodes.update(units.map(function (u) {
      return { id: u.key, color: { background: cs[u.key], border: "#5b6b85", highlight: { background: cs[u.key], border: "#d6336c" } } };
    }));
    legend();
  }
  function initialView() {
    network.fit({ animation: false });
    if (units.length && network.getScale() < 0.45) {
      var first = data.nodes.get(units[0].key);
      network.moveTo({ position: { x: first.x, y: first.y + container.clientHeight / 2 / 0.85 - 40 }, scale: 0.85, animation: false });
    }
  }

  /* ---------- details panel ---------- */
  function histogram(stats) {
    var NS = "http://www.w3.org/2000/svg", h = stats.histogram;
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("class", "hist"); svg.setAttribute("viewBox", "0 0 300 90"); svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img"); svg.setAttribute("aria-label", "activation histogram");
    var max = Math.max.apply(null, h.counts.concat([1])), w = 300 / h.counts.length;
    h.counts.forEach(function (c, i) {
      var r = document.createElementNS(NS, "rect"), hh = c ? Math.max(1, 78 * c / max) : 0;
      r.setAttribute("x", (i * w + 0.5).toFixed(2)); r.setAttribute("width", Math.max(0.5, w - 1).toFixed(2));
      r.setAttribute("y", (80 - hh).toFixed(2)); r.setAttribute("height", hh.toFixed(2)); r.setAttribute("fill", "currentColor");
      svg.appendChild(r);
    });
    var axis = document.createElementNS(NS, "line");
    axis.setAttribute("x1", "0"); axis.setAttribute("x2", "300"); axis.setAttribute("y1", "80.5"); axis.setAttribute("y2", "80.5");
    axis.setAttribute("stroke", "currentColor"); axis.setAttribute("stroke-opacity", "0.4");
    svg.appendChild(axis);
    var wrap = el("div");
    wrap.appendChild(svg);
    var ends = el("div", null, "muted mono");
    ends.style.display = "flex"; ends.style.justifyContent = "space-between";
    ends.appendChild(el("span", fmt.num(h.min))); ends.appendChild(el("span", fmt.num(h.max)));
    wrap.appendChild(ends);
    return wrap;
  }
  function dl(pairs) {
    var d = el("dl");
    pairs.forEach(function (p) { d.appendChild(el("dt", p[0])); d.appendChild(el("dd", p[1])); });
    return d;
  }
  function button(text, fn) { var b = el("button", text); b.type = "button"; b.addEventListener("click", fn); return b; }
  function showPanel(key) {
    var u = unitByKey[key];
    panel.textContent = "";
    if (!u) { panel.appendChild(el("p", "Click a box in the graph to see its details.", "muted")); return; }
    var f = u.fig, isModule = key.charAt(0) === "m", out = f.out, path = isModule ? unitPath(key) : out.module_path;
    panel.appendChild(el("h3", isModule ? path : fmt.opShort(out.op) + " (node " + out.id + ")"));
    var pairs = [];
    if (isModule) {
      pairs.push(["class", classes[path] || ""]);
      var g = view.groups[path];
      if (g) pairs.push(["repeated", "\u00d7" + g[1] + " alike (same class, ops, MACs, params)"]);
      pairs.push(["ops", String(u.ids.length)]);
    } else {
      pairs.push(["op", out.op]); pairs.push(["module", out.module_path || "(root)"]);
    }
    pairs.push(["MACs", fmt.count(f.macs)], ["FLOPs", fmt.count(f.flops)], ["output bytes", fmt.nbytes(f.bytes)],
               ["latency", fmt.ms(f.latency)]);
    pairs.push([isModule ? "last output" : "output", out.outputs.map(function (o) { return fmt.shape(o.shape) + " " + o.dtype; }).join(", ") || "\u2014"]);
    panel.appendChild(dl(pairs));
    var sn = isModule ? f.statsNode : (out.stats ? out : null);
    if (sn) {
      var s = sn.stats;
      panel.appendChild(el("h3", "Activations" + (isModule ? " (node " + sn.id + ", " + fmt.opShort(sn.op) + ")" : "")));
      panel.appendChild(dl([["mean", fmt.num(s.mean)], ["std", fmt.num(s.std)], ["min / max", fmt.num(s.min) + " / " + fmt.num(s.max)],
                            ["zeros", fmt.pct(s.zero_fraction)], ["NaN / Inf", s.nan_count + " / " + s.inf_count]]));
      if (s.histogram) panel.appendChild(histogram(s));
    } else {
      panel.appendChild(el("p", "No activation statistics for this output (not floating point, or not measured).", "muted"));
    }
    var actions = el("div", null, "actions");
    if (isModule) actions.appendChild(button("Expand " + short(path), function () { expand(path); }));
    prefixes(isModule ? path.split(".").slice(0, -1).join(".") : out.module_path).reverse().forEach(function (p) {
      if (open[p] && p in classes) actions.appendChild(button("Collapse " + short(p), function () { collapse(p); }));
    });
    if (isModule) actions.appendChild(button("Filter op table", function () {
      var m = document.getElementById("op-module"); m.value = path; m.dispatchEvent(new Event("input"));
      document.getElementById("ops").scrollIntoView();
    }));
    else actions.appendChild(button("Show in op table", function () { api.showOp(out.id); }));
    panel.appendChild(actions);
  }
  function select(key) {
    network.selectNodes([key]);
    network.focus(key, { scale: Math.max(network.getScale(), 0.8), animation: false });
    showPanel(key);
  }
  function expand(path) {
    open[path] = true;
    build(false);
    var first = units.filter(function (u) { return u.ids.some(function (id) { var p = byId[id].module_path; return p === path || p.indexOf(path + ".") === 0; }); })[0];
    if (first) select(first.key);
  }
  function collapse(path) {
    Object.keys(open).forEach(function (p) { if ((p === path || p.indexOf(path + ".") === 0) && p in classes) delete open[p]; });
    build(false);
    var again = units.filter(function (u) { return u.key.charAt(0) === "m" && unitPath(u.key) === path; })[0];
    if (again) select(again.key);
  }
  api.showNodeInGraph = function (id) {
    var n = byId[id];
    if (!n) return;
    prefixes(n.module_path).forEach(function (p) { open[p] = true; });
    build(false);
    document.getElementById("graph-section").scrollIntoView();
    select("n" + id);
  };

  api.showModuleInGraph = function (path) {
    // open its ancestors; if it is itself open, select every box inside it instead of one
    prefixes(path).slice(0, -1).forEach(function (p) { open[p] = true; });
    build(false);
    document.getElementById("graph-section").scrollIntoView();
    var inside = units.filter(function (u) {
      var p = u.key.charAt(0) === "m" ? unitPath(u.key) : byId[u.ids[0]].module_path;
      return path === "" || p === path || p.indexOf(path + ".") === 0;
    }).map(function (u) { return u.key; });
    if (!inside.length) return;
    if (inside.length === 1) { select(inside[0]); return; }
    network.selectNodes(inside);
    network.fit({ nodes: inside, animation: false });
    showPanel(inside[0]);
  };
  network = new vis.Network(container, data, {
    physics: false, layout: { improvedLayout: false, hierarchical: false },
    interaction: { hover: true, tooltipDelay: 150, keyboard: { enabled: true, bindToWindow: false }, navigationButtons: false },
    edges: { smooth: false, color: { color: "#8a94a6", highlight: "#d6336c" }, width: 1, arrows: { to: { scaleFactor: 0.5 } } }
  });
  network.once("afterDrawing", function () { api.firstDraw = performance.now(); });
  build(true);
  initialView();
  network.on("click", function (p) { if (p.nodes.length) showPanel(p.nodes[0]); });
  network.on("doubleClick", function (p) { if (p.nodes.length && p.nodes[0].charAt(0) === "m") expand(unitPath(p.nodes[0])); });
  document.getElementById("color-by").addEventListener("change", function (ev) { colorBy = ev.target.value; recolour(); });
  document.getElementById("graph-fit").addEventListener("click", function () { network.fit(); });
  document.getElementById("graph-reset").addEventListener("click", function () {
    open = {}; view.open.forEach(function (p) { open[p] = true; });
    build(true); initialView(); showPanel(null);
  });
  api.graph = {
    network: network, data: data, showPanel: showPanel, expand: expand, collapse: collapse,
    layoutFor: function (openList) { var o = {}; openList.forEach(function (p) { o[p] = true; }); return layout(unitsFor(o)); },
    units: function () { return units.map(function (u) { return u.key; }); }
  };
})(mevreport);
