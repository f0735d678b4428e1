/* mevreport graph, part 2: camera, input, colours, minimap, export and the page API. */
(function (api) {
  "use strict";
  var G = api.graphCore, S = G.scene, fmt = api.fmt, el = api.el, view = G.view;
  var wrap = document.getElementById("graph");
  var canvas = document.createElement("canvas");
  canvas.setAttribute("aria-hidden", "true");
  wrap.appendChild(canvas);
  var mini = document.createElement("canvas");
  mini.className = "minimap"; mini.width = 150; mini.height = 110; mini.title = "overview: click to move there";
  wrap.appendChild(mini);
  var tip = el("div", null, "graph-tip"); tip.hidden = true; wrap.appendChild(tip);
  var ctx = canvas.getContext("2d"), mctx = mini.getContext("2d");
  var cam = { s: 1, x: 0, y: 0 }, W = 0, H = 0, dpr = 1, pending = false, engaged = false;
  var colorBy = document.getElementById("color-by").value, bins = null;  /* the first option: a page may add its own */
  api.firstDraw = null;
  api.frames = [];  /* [ms per frame]: read by the browser tests and printed, never asserted */

  function theme() {
    var dark = api.isDark && api.isDark();
    return dark ? { bg: "#1c2129", box: "#2a3342", border: "#7d8ba3", edge: "#8a94a6", faint: "rgba(138,148,166,0.25)", hot: "#ff6b9a", mark: "#f5c518", text: "#10131a" }
      : { bg: "#f5f7fa", box: "#dbe7ff", border: "#5b6b85", edge: "#8a94a6", faint: "rgba(138,148,166,0.25)", hot: "#d6336c", mark: "#e0a800", text: "#1d2330" };
  }
  function resize() {
    dpr = window.devicePixelRatio || 1; W = wrap.clientWidth; H = wrap.clientHeight;
    canvas.width = Math.max(1, Math.round(W * dpr)); canvas.height = Math.max(1, Math.round(H * dpr));
    canvas.style.width = W + "px"; canvas.style.height = H + "px";
  }
  function frame() {
    pending = false;
    var t0 = performance.now();
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    G.paint(ctx, cam.s, cam.x, cam.y, W, H, theme(), false);
    drawMini();
    var t1 = performance.now();
    api.frames.push(t1 - t0);
    if (api.firstDraw === null) api.firstDraw = t1;
  }
  function redraw() { if (!pending) { pending = true; requestAnimationFrame(frame); } }

  /* ---------- colours: quantile bins with labels ---------- */
  var GROUP_COLORS = ["#ffd6a5", "#b9f0b0", "#9be7f5", "#cdc4ff", "#ffc6f0", "#f3f7a8", "#a9c9ff", "#ffb3b3"];
  var RAMP = ["#e6efff", "#bcd4ff", "#ffe08a", "#ffab5e", "#ff6f5a"], MISSING = "#d9dde4";
  function metric(u) {
    var f = u.fig;
    switch (colorBy) {
      case "macs": return f.macs || null; case "flops": return f.flops || null; case "latency": return f.latency || null;
      case "bytes": return f.bytes || null; case "zero": return f.zero; case "nan": return f.nan;
    }
    return null;
  }
  function label(v) {
    return colorBy === "latency" ? fmt.ms(v) : colorBy === "bytes" ? fmt.nbytes(v) : colorBy === "zero" ? fmt.pct(v) : fmt.count(v);
  }
  function colours() {
    var out = Object.create(null);
    bins = null;
    if (colorBy !== "group" && colorBy !== "nan" && !(api.colourings && api.colourings[colorBy])) {
      var vals = S.units.map(metric).filter(function (v) { return v !== null && (v > 0 || colorBy === "zero"); }).sort(function (a, b) { return a - b; });
      if (vals.length) {
        var cuts = [];  /* upper edges of the bins: quantiles, so each colour holds about a fifth of the boxes */
        for (var q = 1; q < RAMP.length; q++) cuts.push(vals[Math.min(vals.length - 1, Math.floor(q * vals.length / RAMP.length))]);
        cuts = cuts.filter(function (c, i) { return i === 0 || c > cuts[i - 1]; });
        bins = { lo: vals[0], hi: vals[vals.length - 1], cuts: cuts };
      }
    }
    var extra = api.colourings && api.colourings[colorBy];  /* a page's own colouring (the diff page's changes) */
    S.units.forEach(function (u) {
      var c;
      if (extra) c = extra.colour(u);
      else if (colorBy === "group") {
        if (u.module) { var g = view.groups[G.unitPath(u.key)]; c = g ? GROUP_COLORS[g[0] % GROUP_COLORS.length] : "#dbe7ff"; }
        else c = u.fig.macs ? "#c9dcff" : "#eceff4";
      } else if (colorBy === "nan") c = u.fig.statsNode ? (u.fig.nan ? "#ff5f56" : "#c8ecd0") : MISSING;
      else {
        var v = metric(u);
        if (v === null || (v <= 0 && colorBy !== "zero") || !bins) c = MISSING;
        else { var b = 0; while (b < bins.cuts.length && v >= bins.cuts[b]) b++; c = RAMP[Math.min(RAMP.length - 1, b + RAMP.length - 1 - bins.cuts.length)]; }
      }
      out[u.key] = c;
    });
    S.colours = out;
    legend();
  }
  function legend() {
    var lg = document.getElementById("legend");
    lg.textContent = "";
    var extra = api.colourings && api.colourings[colorBy];
    if (extra) { extra.legend(lg); return; }
    if (colorBy === "group") { lg.textContent = "same colour and \u00d7N: repeated blocks; blue ops do MACs"; return; }
    if (colorBy === "nan") { lg.textContent = "red: NaN or Inf in outputs; grey: no statistics"; return; }
    if (!bins) { lg.textContent = "nothing measured to colour by"; return; }
    var edges = [bins.lo].concat(bins.cuts).concat([bins.hi]), first = RAMP.length - 1 - bins.cuts.length;
    for (var i = 0; i <= bins.cuts.length; i++) {
      var sw = el("span", null, "swatch"); sw.style.background = RAMP[first + i];
      var item = el("span", null, "bin"); item.appendChild(sw);
      item.appendChild(el("span", label(edges[i]) + (i < bins.cuts.length ? " \u2013 " + label(edges[i + 1]) : "+")));
      lg.appendChild(item);
    }
    lg.appendChild(el("span", "grey: none or not measured (bins are quantiles of the boxes shown)"));
  }

  /* ---------- camera ---------- */
  function fitAll() {
    var b = S.bounds, s = Math.min(W / (b.x1 - b.x0 + 40), H / (b.y1 - b.y0 + 40), 1.5);
    cam.s = s; cam.x = W / 2 - s * (b.x0 + b.x1) / 2; cam.y = H / 2 - s * (b.y0 + b.y1) / 2;
    redraw();
  }
  /* Readable first view: the whole graph if its labels stay legible, else the model's top at a readable scale. */
  function initialView() {
    var b = S.bounds, fit = Math.min(W / (b.x1 - b.x0 + 40), H / (b.y1 - b.y0 + 40), 1.2);
    if (fit >= 0.6 || !S.units.length) { fitAll(); return; }
    var s = Math.max(0.6, Math.min(1, W / (b.x1 - b.x0 + 40)));
    var first = S.units[0];
    cam.s = s; cam.y = 20 - s * b.y0;
    cam.x = s * (b.x1 - b.x0) + 40 <= W ? W / 2 - s * (b.x0 + b.x1) / 2 : W / 2 - s * first.x;
    redraw();
  }
  function centreOn(u, minScale) {
    cam.s = Math.max(cam.s, minScale || 0.8);
    cam.x = W / 2 - cam.s * u.x; cam.y = H / 2 - cam.s * u.y;
    redraw();
  }
  function zoomAt(f, sx, sy) {
    var s = Math.min(4, Math.max(0.01, cam.s * f));
    cam.x = sx - (sx - cam.x) * s / cam.s; cam.y = sy - (sy - cam.y) * s / cam.s; cam.s = s;
    redraw();
  }

  /* ---------- minimap ---------- */
  function drawMini() {
    var b = S.bounds, mw = mini.width, mh = mini.height;
    var s = Math.min(mw / (b.x1 - b.x0), mh / (b.y1 - b.y0)), ox = (mw - s * (b.x1 - b.x0)) / 2 - s * b.x0, oy = (mh - s * (b.y1 - b.y0)) / 2 - s * b.y0;
    mini._t = { s: s, ox: ox, oy: oy };
    mctx.setTransform(1, 0, 0, 1, 0, 0);
    mctx.fillStyle = theme().bg; mctx.fillRect(0, 0, mw, mh);
    mctx.fillStyle = "#8a94a6";
    var cell = Object.create(null);
    S.units.forEach(function (u) {  /* one pixel per occupied cell, whatever the op count */
      var px = Math.floor(ox + s * u.x), py = Math.floor(oy + s * u.y), k = px + "," + py;
      if (!cell[k]) { cell[k] = 1; mctx.fillRect(px, py, Math.max(1, s * G.BW), Math.max(1, s * G.BH)); }
    });
    mctx.strokeStyle = "#d6336c"; mctx.lineWidth = 1.5;
    mctx.strokeRect(ox + s * (-cam.x / cam.s), oy + s * (-cam.y / cam.s), s * W / cam.s, s * H / cam.s);
  }
  mini.addEventListener("pointerdown", function (ev) {
    ev.stopPropagation();
    /* the click in the canvas's own pixels: inside its border, and CSS may draw it smaller (a phone) */
    var t = mini._t, r = mini.getBoundingClientRect();
    var mx = (ev.clientX - r.left - mini.clientLeft) * mini.width / mini.clientWidth;
    var my = (ev.clientY - r.top - mini.clientTop) * mini.height / mini.clientHeight;
    var wx = (mx - t.ox) / t.s, wy = (my - t.oy) / t.s;
    cam.x = W / 2 - cam.s * wx; cam.y = H / 2 - cam.s * wy; engage(true); redraw();
  });

  /* ---------- input: the page scrolls over the graph until the reader engages it ---------- */
  function engage(on) {
    engaged = on;
    wrap.classList.toggle("engaged", on);
    document.getElementById("graph-hint").textContent = on ? "wheel zooms, drag pans; click or tap outside the graph to scroll the page"
      : "click or tap the graph (or hold Ctrl) to zoom and pan it";
  }
  function toWorld(ev) {
    var r = canvas.getBoundingClientRect();
    return { sx: ev.clientX - r.left, sy: ev.clientY - r.top, wx: (ev.clientX - r.left - cam.x) / cam.s, wy: (ev.clientY - r.top - cam.y) / cam.s };
  }
  /* A finger that lands on an idle graph is the page's (touch-action lets the browser scroll it):
   * only a tap engages the graph, after which a swipe pans it.  A mouse engages on press. */
  var drag = null;
  canvas.addEventListener("pointerdown", function (ev) {
    var idle = ev.pointerType === "touch" && !engaged;
    if (!idle) { engage(true); canvas.setPointerCapture(ev.pointerId); }
    drag = { x: ev.clientX, y: ev.clientY, cx: cam.x, cy: cam.y, moved: false, id: ev.pointerId, idle: idle };
  });
  canvas.addEventListener("pointercancel", function () { drag = null; });  /* the browser took it: a scroll */
  canvas.addEventListener("pointermove", function (ev) {
    if (drag) {
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      if (drag.moved && !drag.idle) { cam.x = drag.cx + dx; cam.y = drag.cy + dy; redraw(); }
      return;
    }
    var p = toWorld(ev), u = G.hit(p.wx, p.wy);
    tip.hidden = !u;
    if (u) { tip.textContent = u.desc.title; tip.style.left = (p.sx + 12) + "px"; tip.style.top = (p.sy + 12) + "px"; }
  });
  canvas.addEventListener("pointerleave", function () { tip.hidden = true; });
  canvas.addEventListener("pointerup", function (ev) {
    var d = drag; drag = null;
    if (!d || d.moved) return;
    if (d.idle) engage(true);  /* a tap */
    var p = toWorld(ev), u = G.hit(p.wx, p.wy);
    if (u) api.graph.select(u.key, false);
  });
  canvas.addEventListener("dblclick", function (ev) {
    var p = toWorld(ev), u = G.hit(p.wx, p.wy);
    if (u && u.module) api.graph.expand(G.unitPath(u.key));
  });
  wrap.addEventListener("wheel", function (ev) {
    if (!engaged && !ev.ctrlKey && !ev.metaKey && !ev.altKey) return;  /* the page scrolls */
    ev.preventDefault();
    var p = toWorld(ev);
    zoomAt(Math.exp(-ev.deltaY * 0.0015), p.sx, p.sy);
  }, { passive: false });
  document.addEventListener("pointerdown", function (ev) { if (engaged && !wrap.contains(ev.target)) engage(false); });
  window.addEventListener("resize", function () { resize(); redraw(); });

  api.graphUi = {
    canvas: canvas, cam: cam, redraw: redraw, fitAll: fitAll, initialView: initialView, centreOn: centreOn, zoomAt: zoomAt,
    colours: colours, setColorBy: function (c) { colorBy = c; colours(); redraw(); }, engage: engage,
    size: function () { return { w: W, h: H }; }, theme: theme
  };
  resize();
})(mevreport);
