/* The diff page's graph of HEAD: the report page's own graph scripts (base.js, graph.js, graph_ui.js,
 * graph_api.js, so one layout), with every box coloured by what changed in its module since BASE and
 * the change written into its title and details.  It runs before graph.js (whose first view already
 * asks for the colours and titles), so it reaches the graph's parts only when called.
 * ``#mevreport-diff-marks`` (render/diff_page.py):
 * kinds, HEAD module path -> added | changed | renamed | same; notes, path -> the figures that moved. */
(function (api) {
  "use strict";
  var el = api.el, G = null;
  var marks = JSON.parse(document.getElementById("mevreport-diff-marks").textContent);
  var kinds = new Map(Object.entries(marks.kinds)), notes = new Map(Object.entries(marks.notes));
  var inside = new Set();  /* modules with a change somewhere below them */
  function core() {
    if (G) return G;
    G = api.graphCore;
    kinds.forEach(function (kind, path) {
      if (kind === "same") return;
      G.prefixes(path).slice(0, -1).forEach(function (p) { inside.add(p); });
      if (path !== "") inside.add("");
    });
    return G;
  }
  var COLOURS = { added: "#b9f0b0", changed: "#ffe08a", renamed: "#cdc4ff", inner: "#fff3c4", same: "#eceff4" };
  var WORDS = { added: "added", changed: "changed", renamed: "renamed", inner: "changes inside", same: "unchanged" };
  function pathOf(u) { var g = core(); return u.key.charAt(0) === "m" ? g.unitPath(u.key) : g.byId[u.ids[0]].module_path; }
  /* A box's change: its module's; an op takes the module it ran in (not the root: every change changes it). */
  function kindOf(u) {
    var path = pathOf(u), kind = kinds.get(path) || "same", box = u.key.charAt(0) === "m";
    if (!box && path === "") return "same";
    if (box && kind === "same" && inside.has(path)) return "inner";
    return kind;
  }
  api.unitNote = function (u) {
    var kind = kindOf(u), note = notes.get(pathOf(u)), box = u.key.charAt(0) === "m";
    if (kind === "same") return null;
    return WORDS[kind] + (note && box ? ": " + note : box ? "" : " (in " + (pathOf(u) || "(root)") + ")");
  };
  api.changeOf = kindOf;
  api.colourings = {
    change: {
      colour: function (u) { return COLOURS[kindOf(u)]; },
      legend: function (lg) {
        ["added", "changed", "renamed", "inner", "same"].forEach(function (k) {
          var sw = el("span", null, "swatch"); sw.style.background = COLOURS[k];
          var item = el("span", null, "bin"); item.setAttribute("data-kind", k);
          item.appendChild(sw); item.appendChild(el("span", WORDS[k]));
          lg.appendChild(item);
        });
        if (marks.removed) lg.appendChild(el("span", marks.removed + " removed module(s): in the tree above, struck through"));
      }
    }
  };
  /* the page's theme toggle (_page.html.j2) only flips the class: redraw in the new colours */
  new MutationObserver(function () { if (api.onTheme) api.onTheme(); }).observe(document.documentElement, { attributes: true, attributeFilter: ["class"] });
})(mevreport);
