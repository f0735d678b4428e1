/* mevreport graph, part 1: units, the one layout, and a canvas renderer.
 *
 * The layout lives only here (DESIGN §4): Python picks the first depth and the repeat groups,
 * the page lays out every view, first draw included.  A view chosen as a whole (a depth, expand
 * all, a search revealing an op) is laid out whole; expanding one block lays out only its inside,
 * puts it where the box was and moves the rest aside (expandIn), so the reader's map stays put.
 *
 * Drawing is our own <canvas> (vis-network drew the expanded 10k graph in 7.2 s and 2.6 s a
 * frame): each frame draws only the boxes and edges inside the view, batched by colour, and
 * drops labels, borders and arrows as the reader zooms out (level of detail). */
(function (api) {
  "use strict";
  var doc = api.doc, fmt = api.fmt;
  var view = JSON.parse(document.getElementById("mevreport-view").textContent);
  /* maps keyed by module path have no prototype: a module may be named "constructor" or "__proto__" */
  view.groups = Object.assign(Object.create(null), view.groups);
  var XS = 220, YS = 80, BW = 200, BH = 44, FAN = 8;
  var nodes = doc.nodes, byId = Object.create(null), consumersOf = Object.create(null);
  nodes.forEach(function (n) { byId[n.id] = n; consumersOf[n.id] = []; });
  nodes.forEach(function (n) { n.inputs.forEach(function (s) { if (consumersOf[s]) consumersOf[s].push(n.id); }); });
  var classes = api.classes, prefixes = api.prefixes, sharedPrefixes = api.sharedPrefixes;
  /* A module called more than once gives one box per call when the op is its own: merged, its box would feed itself. */
  function unitKey(path, id, openSet, call) {
    var ps = sharedPrefixes(path);
    for (var i = 0; i < ps.length; i++) if (!openSet[ps[i]]) return "m:" + ps[i] + (call && ps[i] === path ? "#" + call : "");
    return "n" + id;
  }
  function unitPath(key) { return key.slice(2).split("#")[0]; }
  function unitsFor(openSet) {
    var order = [], members = Object.create(null), inputs = Object.create(null), seen = Object.create(null), unitOf = Object.create(null);
    nodes.forEach(function (n) {
      var key = unitKey(n.module_path, n.id, openSet, n.module_call);
      unitOf[n.id] = key;
      if (!members[key]) { members[key] = []; inputs[key] = []; seen[key] = Object.create(null); order.push(key); }
      members[key].push(n.id);
      n.inputs.forEach(function (src) {
        var s = unitOf[src];
        if (s !== undefined && s !== key && !seen[key][s]) { seen[key][s] = true; inputs[key].push(s); }
      });
    });
    return order.map(function (k) { return { key: k, ids: members[k], inputs: inputs[k] }; });
  }
  /* Every module path prefix an op sits under; those that never ran (a ModuleList) are always open. */
  var allPaths = Object.create(null);
  nodes.forEach(function (n) { sharedPrefixes(n.module_path).forEach(function (p) { allPaths[p] = true; }); });
  function openForDepth(depth) {
    var o = Object.create(null);
    Object.keys(allPaths).forEach(function (p) {
      if (!(p in classes) || depth === null || p.split(".").length < depth) o[p] = true;
    });
    return o;
  }
  function nearestFree(taken, want, n) {
    for (var step = 0; step <= n; step++) {
      if (!taken[want + step]) return want + step;
      if (!taken[want - step]) return want - step;
    }
    return want + n + 1;
  }
  function anchors(us) {
    var out = Object.create(null), following = null, previous = null, i;
    for (i = us.length - 1; i >= 0; i--) { out[us[i].key] = following; if (us[i].inputs.length) following = us[i].key; }
    for (i = 0; i < us.length; i++) { if (out[us[i].key] === null) out[us[i].key] = previous; if (us[i].inputs.length) previous = us[i].key; }
    return out;
  }
  /* (column, layer) per unit.  Layer: one more than the deepest input; sources (parameter-only ops,
   * the first readers of model inputs) one layer above their first consumer; a source nobody reads
   * beside the op that ran next.  Column: the mean column of the inputs (sources: of their consumers),
   * nearest free, so a main path stays straight and branches sit beside it, in execution order. */
  function layout(us) {
    var consumers = Object.create(null), layer = Object.create(null), col = Object.create(null), taken = Object.create(null), counts = Object.create(null), wanted = Object.create(null);
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
      var below = Infinity;
      consumers[u.key].forEach(function (c) { if (c in layer && layer[c] < below) below = layer[c]; });
      if (below !== Infinity) layer[u.key] = Math.max(0, below - 1);
      else layer[u.key] = anchor[u.key] ? layer[anchor[u.key]] : 0;
    });
    function place(u, refs) {
      var sum = 0, k = 0;
      refs.forEach(function (s) { if (s in col) { sum += col[s]; k++; } });
      var want = k ? Math.floor(sum / k + 0.5) : 0, l = layer[u.key];
      var row = taken[l] = taken[l] || Object.create(null);
      col[u.key] = nearestFree(row, want, counts[l] || 0);
      counts[l] = (counts[l] || 0) + 1;
      wanted[u.key] = want;
      row[col[u.key]] = true;
    }
    function tidy(keys) {
      var groups = Object.create(null);
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
    var out = Object.create(null);
    Object.keys(col).forEach(function (k) { out[k] = [col[k], layer[k]]; });
    return out;
  }
  /* The deepest depth whose view has at most max_units boxes (null: every op, when that fits). */
  function chooseDepth(max) {
    if (nodes.length <= max) return null;
    var best = 1, deepest = 1;
    doc.modules.forEach(function (m) { if (m.depth > deepest) deepest = m.depth; });
    for (var d = 1; d <= deepest; d++) {
      var o = openForDepth(d), keys = Object.create(null), k = 0;
      for (var i = 0; i < nodes.length && k <= max; i++) {
        var key = unitKey(nodes[i].module_path, nodes[i].id, o, nodes[i].module_call);
        if (!keys[key]) { keys[key] = true; k++; }
      }
      if (k > max) break;
      best = d;
    }
    return best;
  }
  function short(text) {
    var n = view.label_chars;
    return text.length <= n ? text : "\u2026" + text.slice(text.length - (n - 1));
  }
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
  /* A page may add a line to every box's title (the diff page: what changed in it, api.unitNote). */
  function describe(u) {
    var d = describeBox(u), note = api.unitNote ? api.unitNote(u) : null;
    if (note) d.title += " \u2014 " + note;
    return d;
  }
  function describeBox(u) {
    var f = u.fig;
    if (u.key.charAt(0) === "m") {
      var path = unitPath(u.key), g = view.groups[path], call = u.key.indexOf("#") > 0 ? u.key.split("#")[1] : null;
      return {
        lines: [short(path), short(classes[path] || "") + (g ? " \u00d7" + g[1] : "") + (call ? " (call " + call + ")" : "")],
        title: path + " (" + (classes[path] || "") + "): " + u.ids.length + " ops, " + fmt.count(f.macs, "MACs") + ", " + fmt.nbytes(f.bytes)
      };
    }
    var n = f.out;
    return {
      lines: [short(fmt.opShort(n.op)), n.outputs.length ? fmt.shape(n.outputs[0].shape) : ""],
      title: n.op + " in " + (n.module_path || "(root)") + ": " + fmt.count(f.macs, "MACs") + ", " + fmt.nbytes(f.bytes)
    };
  }

  /* ---------- the scene: units with world positions, edges, a grid for hit tests ---------- */
  var S = { units: [], byKey: Object.create(null), edges: [], grid: Object.create(null), bounds: { x0: 0, y0: 0, x1: 1, y1: 1 }, open: Object.create(null),
            colours: Object.create(null), selected: null, marked: Object.create(null), layoutMs: 0 };
  function build(openSet) {
    var t0 = performance.now();
    var us = unitsFor(openSet);
    return scene(openSet, us, layout(us), t0, {});
  }
  /* The view with module `path` opened, laid out locally: each of its boxes (one per call) gives
   * way to its inside, laid out on its own with the box's column as its column 0 and the box's layer
   * as its first; everything below moves down by the inside's height and the boxes beside it in its
   * layer move out by its width, so every other box keeps its place relative to the others. */
  function expandIn(openSet, path) {
    var t0 = performance.now(), old = S.byKey, oldUnitOf = S.unitOf;
    var boxes = S.units.filter(function (u) { return u.module && unitPath(u.key) === path; });
    var us = unitsFor(openSet), groups = Object.create(null), pos = Object.create(null), whole = !boxes.length;
    us.forEach(function (u) {
      if (old[u.key]) { pos[u.key] = [old[u.key].col, old[u.key].layer]; return; }
      var from = oldUnitOf[u.ids[0]];
      if (!from || unitPath(from.key) !== path) whole = true;  /* not from one of the boxes: lay out whole */
      else (groups[from.key] = groups[from.key] || []).push(u);
    });
    if (whole) return scene(openSet, us, layout(us), t0, {});
    boxes.sort(function (a, b) { return b.layer - a.layer; }).forEach(function (box) {
      var inner = groups[box.key] || [], mine = Object.create(null);
      if (!inner.length) return;
      inner.forEach(function (u) { mine[u.key] = true; });
      var sub = layout(inner.map(function (u) {
        return { key: u.key, ids: u.ids, inputs: u.inputs.filter(function (k) { return mine[k]; }) };
      }));
      var c0 = Infinity, c1 = -Infinity, l0 = Infinity, l1 = -Infinity;
      inner.forEach(function (u) { var q = sub[u.key]; c0 = Math.min(c0, q[0]); c1 = Math.max(c1, q[0]); l0 = Math.min(l0, q[1]); l1 = Math.max(l1, q[1]); });
      var height = l1 - l0;
      Object.keys(pos).forEach(function (k) {
        var p = pos[k];
        if (p[1] > box.layer) p[1] += height;
        else if (p[1] === box.layer) p[0] += p[0] > box.col ? Math.max(0, c1) : p[0] < box.col ? Math.min(0, c0) : 0;
      });
      inner.forEach(function (u) { var q = sub[u.key]; pos[u.key] = [box.col + q[0], box.layer + q[1] - l0]; });
    });
    return scene(openSet, us, pos, t0, old);
  }
  /* The scene from units and their (column, layer); figures of boxes that did not change are kept. */
  function scene(openSet, us, pos, t0, keep) {
    S.open = openSet;
    S.layoutMs = performance.now() - t0;
    S.byKey = Object.create(null); S.grid = Object.create(null); S.unitOf = Object.create(null);
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity, fanout = Object.create(null);
    us.forEach(function (u) {
      var was = keep[u.key];
      u.fig = was ? was.fig : figures(u); u.desc = was ? was.desc : describe(u);
      u.col = pos[u.key][0]; u.layer = pos[u.key][1]; u.x = u.col * XS; u.y = u.layer * YS;
      u.module = u.key.charAt(0) === "m";
      S.byKey[u.key] = u; S.grid[u.col + "," + u.layer] = u;
      u.ids.forEach(function (id) { S.unitOf[id] = u; });
      x0 = Math.min(x0, u.x - BW / 2); x1 = Math.max(x1, u.x + BW / 2); y0 = Math.min(y0, u.y - BH / 2); y1 = Math.max(y1, u.y + BH / 2);
      u.inputs.forEach(function (s) { fanout[s] = (fanout[s] || 0) + 1; });
    });
    S.edges = [];
    us.forEach(function (u) {
      u.outs = [];
      u.inputs.forEach(function (s) {
        var a = S.byKey[s];
        /* a tensor read by many boxes (a mask, a position table) is drawn faint, not as a dark fan */
        S.edges.push({ a: a, b: u, faint: fanout[s] >= FAN });
      });
    });
    us.forEach(function (u) { u.inputs.forEach(function (s) { S.byKey[s].outs.push(u.key); }); });
    S.units = us;
    S.bounds = us.length ? { x0: x0, y0: y0, x1: x1, y1: y1 } : { x0: 0, y0: 0, x1: 1, y1: 1 };
    if (S.selected && !S.byKey[S.selected]) S.selected = null;
    return S;
  }
  function hit(wx, wy) {
    var u = S.grid[Math.round(wx / XS) + "," + Math.round(wy / YS)];
    return u && Math.abs(wx - u.x) <= BW / 2 && Math.abs(wy - u.y) <= BH / 2 ? u : null;
  }

  /* Draw the scene into ctx with world->pixel transform (s, tx, ty); only what meets [vx0,vx1]x[vy0,vy1]. */
  function paint(ctx, s, tx, ty, W, H, theme, full) {
    var vx0 = -tx / s, vy0 = -ty / s, vx1 = (W - tx) / s, vy1 = (H - ty) / s;
    ctx.fillStyle = theme.bg; ctx.fillRect(0, 0, W, H);
    ctx.save();
    ctx.setTransform(ctx.getTransform().multiply(new DOMMatrix([s, 0, 0, s, tx, ty])));
    var hx = BW / 2, hy = BH / 2, detail = s >= 0.45 || full, i, e, u;
    var normal = new Path2D(), faint = new Path2D(), heads = new Path2D(), hot = new Path2D(), arrows = s >= 0.35 || full;
    for (i = 0; i < S.edges.length; i++) {
      e = S.edges[i];
      var ax = e.a.x, ay = e.a.y + hy, bx = e.b.x, by = e.b.y - hy;
      if (Math.max(ay, by) < vy0 || Math.min(ay, by) > vy1 || Math.max(ax, bx) < vx0 - hx || Math.min(ax, bx) > vx1 + hx) continue;
      /* on screen, a fan (a causal mask read by every layer) is drawn only into the boxes in view: its hundreds
       * of lines crossing the view stacked into a dark wedge; the export draws them all */
      if (e.faint && !full && (by < vy0 || by > vy1 + hy || bx < vx0 - hx || bx > vx1 + hx)) continue;
      var p = S.selected && (e.a.key === S.selected || e.b.key === S.selected) ? hot : e.faint ? faint : normal;
      p.moveTo(ax, ay); p.lineTo(bx, by);
      if (arrows && !e.faint) {
        var dx = bx - ax, dy = by - ay, l = Math.sqrt(dx * dx + dy * dy) || 1, ux = dx / l, uy = dy / l;
        heads.moveTo(bx, by); heads.lineTo(bx - 7 * ux + 4 * uy, by - 7 * uy - 4 * ux); heads.lineTo(bx - 7 * ux - 4 * uy, by - 7 * uy + 4 * ux);
        heads.closePath();
      }
    }
    ctx.lineWidth = Math.max(1, 1 / s);
    ctx.strokeStyle = theme.faint; ctx.stroke(faint);
    ctx.strokeStyle = theme.edge; ctx.stroke(normal);
    if (arrows) { ctx.fillStyle = theme.edge; ctx.fill(heads); }
    ctx.strokeStyle = theme.hot; ctx.lineWidth = Math.max(2, 2 / s); ctx.stroke(hot);
    var byColour = Object.create(null), visible = [];
    for (i = 0; i < S.units.length; i++) {
      u = S.units[i];
      if (u.x + hx < vx0 || u.x - hx > vx1 || u.y + hy < vy0 || u.y - hy > vy1) continue;
      visible.push(u);
      var c = S.colours[u.key] || theme.box;
      (byColour[c] = byColour[c] || []).push(u);
    }
    Object.keys(byColour).forEach(function (c) {
      ctx.fillStyle = c;
      ctx.beginPath();
      byColour[c].forEach(function (v) { ctx.rect(v.x - hx, v.y - hy, BW, BH); });
      ctx.fill();
    });
    if (s >= 0.2 || full) {
      ctx.lineWidth = 1; ctx.strokeStyle = theme.border;
      var solid = new Path2D(), dashed = new Path2D();
      visible.forEach(function (v) { (v.module ? dashed : solid).rect(v.x - hx, v.y - hy, BW, BH); });
      ctx.stroke(solid);
      ctx.setLineDash([5, 3]); ctx.lineWidth = 2; ctx.stroke(dashed); ctx.setLineDash([]);
    }
    ctx.lineWidth = Math.max(2.5, 2.5 / s);
    visible.forEach(function (v) {
      if (S.marked[v.key]) { ctx.strokeStyle = theme.mark; ctx.strokeRect(v.x - hx - 3, v.y - hy - 3, BW + 6, BH + 6); }
      if (v.key === S.selected) { ctx.strokeStyle = theme.hot; ctx.strokeRect(v.x - hx - 1, v.y - hy - 1, BW + 2, BH + 2); }
    });
    if (detail) {
      ctx.fillStyle = theme.text; ctx.font = "12px ui-monospace, Menlo, monospace"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
      visible.forEach(function (v) { ctx.fillText(v.desc.lines[0], v.x, v.y - 8); ctx.fillText(v.desc.lines[1], v.x, v.y + 9); });
    }
    ctx.restore();
    return visible.length;
  }

  api.graphCore = {
    view: view, byId: byId, consumersOf: consumersOf, classes: classes, prefixes: prefixes, unitPath: unitPath,
    unitsFor: unitsFor, layout: layout, openForDepth: openForDepth, chooseDepth: chooseDepth, short: short,
    build: build, expandIn: expandIn, hit: hit, paint: paint, scene: S, XS: XS, YS: YS, BW: BW, BH: BH
  };
})(mevreport);
