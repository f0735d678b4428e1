/* mevreport page scripts, part 0: the document, formatting, the dark-mode test and the op search,
 * shared by the report page and the diff page (whose graph of HEAD is drawn by the same scripts).
 * Runs inside load.js's start function: ``payload`` holds the document's JSON text.
 * Every model string reaches the page through textContent or setAttribute, never innerHTML. */
"use strict";
var mevreport = (function () {
  var doc = JSON.parse(payload.doc);
  var root = document.documentElement;
  var api = { doc: doc };

  /* ---------- formatting (mirrors mevreport/render/format.py) ---------- */
  function three(x) {
    if (x === 0) return "0";
    var a = Math.abs(x);
    return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
  }
  var SI = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "K"]];
  var BIN = [[Math.pow(2, 40), "TiB"], [Math.pow(2, 30), "GiB"], [Math.pow(2, 20), "MiB"], [1024, "KiB"]];
  function count(v, unit) {
    unit = unit || "";
    if (v === null || v === undefined) return "\u2014";
    for (var i = 0; i < SI.length; i++) if (Math.abs(v) >= SI[i][0]) return (three(v / SI[i][0]) + " " + SI[i][1] + unit).trim();
    return (Number.isInteger(v) ? v.toLocaleString("en-US") : three(v)) + (unit ? " " + unit : "");
  }
  function nbytes(v) {
    if (v === null || v === undefined) return "\u2014";
    for (var i = 0; i < BIN.length; i++) if (Math.abs(v) >= BIN[i][0]) return three(v / BIN[i][0]) + " " + BIN[i][1];
    return v + " B";
  }
  function ms(v) {
    if (v === null || v === undefined) return "\u2014";
    if (v >= 1000) return three(v / 1000) + " s";
    if (v < 0.01) return (v * 1000).toFixed(1) + " \u00b5s";
    return three(v) + " ms";
  }
  function num(v) {
    if (v === null || v === undefined) return "\u2014";
    if (v === 0) return "0";
    return Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3 ? v.toPrecision(3) : String(Number(v.toPrecision(4)));
  }
  function pct(v) { return v === null || v === undefined ? "\u2014" : (v * 100).toFixed(1) + "%"; }
  function shape(s) { return "[" + s.join("\u00d7") + "]"; }
  function opShort(op) { var p = op.split("."); return p.length >= 2 ? p[1] : op; }
  api.fmt = { count: count, nbytes: nbytes, ms: ms, num: num, pct: pct, shape: shape, opShort: opShort };

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  api.el = el;

  api.isDark = function () { return root.classList.contains("dark"); };

  /* ---------- module paths: classes and prefixes (maps keyed by path have no prototype: a module may
   * be named "constructor" or "__proto__") ---------- */
  var classes = Object.create(null);
  doc.modules.forEach(function (m) { classes[m.path] = m.class_name; });
  /* "a.b.c" -> ["a", "a.b", "a.b.c"], a new array; "" (the root) -> [] */
  function prefixes(path) {
    if (!path) return [];
    var parts = path.split("."), out = [];
    for (var i = 0; i < parts.length; i++) out.push(parts.slice(0, i + 1).join("."));
    return out;
  }
  /* The same, shared and read-only, for per-op walks: 100,000 ops sit under far fewer paths. */
  var prefixMemo = Object.create(null);
  function sharedPrefixes(path) { return prefixMemo[path] || (prefixMemo[path] = prefixes(path)); }
  api.classes = classes; api.prefixes = prefixes; api.sharedPrefixes = sharedPrefixes;
  var opShort = api.fmt.opShort;

  /* ---------- search: one matcher for the graph and the op table ---------- */
  /* What a fused kernel computes, so "softmax" finds scaled_dot_product_attention (keys: op short names). */
  var SYNONYMS = {
    scaled_dot_product_attention: "softmax attention sdpa matmul bmm",
    _scaled_dot_product_flash_attention: "softmax attention sdpa flash matmul",
    _scaled_dot_product_efficient_attention: "softmax attention sdpa matmul",
    _scaled_dot_product_flash_attention_for_cpu: "softmax attention sdpa flash matmul",
    _softmax: "softmax", _log_softmax: "log_softmax softmax",
    native_layer_norm: "layer_norm layernorm normalization", layer_norm: "layernorm normalization",
    native_batch_norm: "batch_norm batchnorm normalization", _native_batch_norm_legit_no_training: "batch_norm batchnorm normalization",
    _native_batch_norm_legit: "batch_norm batchnorm normalization", native_group_norm: "group_norm groupnorm normalization",
    addmm: "linear matmul gemm", mm: "matmul gemm", bmm: "matmul", linear: "matmul gemm",
    convolution: "conv conv2d conv1d", silu: "swish", embedding: "lookup gather"
  };
  var hayCache = Object.create(null);
  function hay(n) {
    var h = hayCache[n.id];
    if (h !== undefined) return h;
    var parts = [n.op, n.module_path];
    sharedPrefixes(n.module_path).forEach(function (p) { if (classes[p]) parts.push(classes[p]); });
    parts.push(SYNONYMS[opShort(n.op)] || "");
    n.outputs.forEach(function (o) { parts.push("[" + o.shape.join("x") + "]"); });
    h = hayCache[n.id] = parts.join(" ").toLowerCase();
    return h;
  }
  /* A predicate over ops for a query: every word must occur in the op, its module path, a class on that
   * path, its output shapes (typed with x or \u00d7) or what its fused kernel computes. */
  api.opMatcher = function (query) {
    var words = String(query).toLowerCase().replace(/\u00d7/g, "x").replace(/(\d)\s*x\s*(?=\d)/g, "$1x").trim().split(/\s+/)
      .filter(function (w) { return w; });
    /* a shape word matches whole dimensions: "2x8" finds [1x2x8] but not [12x80]; brackets pin the ends */
    var tests = words.map(function (w) {
      var m = /^(\[?)(\d+(?:x\d+)*)(\]?)$/.exec(w);
      if (!m || (m[2].indexOf("x") < 0 && !m[1] && !m[3])) return function (h) { return h.indexOf(w) >= 0; };
      var re = new RegExp((m[1] ? "\\[" : "[\\[x]") + m[2] + (m[3] ? "\\]" : "[\\]x]"));
      return function (h) { return re.test(h); };
    });
    return function (n) {
      var h = hay(n);
      for (var i = 0; i < tests.length; i++) if (!tests[i](h)) return false;
      return true;
    };
  };

  return api;
})();
window.mevreport = mevreport;  /* the page API (docs/report.md): a global, as the scripts run inside load.js's function */
