// shapecalc report: select a layer from the table or the graph and see its arithmetic, notes
// and receptive field. All text goes in through textContent: names are data, never markup.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("sc-data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const table = document.getElementById("sc-table");
  const rows = Array.from(table.querySelectorAll("tbody tr.sc-row"));
  const details = document.getElementById("sc-details");
  const nameOf = (row) => data.rows[+row.dataset.row];
  const rowOf = new Map(rows.map((r) => [nameOf(r), r]));
  const nodeOf = new Map();  // layer or block name -> its node in the graph
  let svgCount = 0;

  document.querySelectorAll("#sc-graph g.node").forEach((g) => {
    const name = data.graph_ids[g.id];
    if (name === undefined) return;
    nodeOf.set(name, g);
    g.addEventListener("click", (event) => { event.preventDefault(); select(name); });
  });
  rows.forEach((row) => {
    row.tabIndex = 0;
    row.addEventListener("click", () => select(nameOf(row)));
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); select(nameOf(row)); }
      if (event.key === "ArrowLeft" || event.key === "ArrowRight") fold(row, event.key === "ArrowLeft");
    });
    const rec = data.layers[nameOf(row)];
    if (rec && rec.is_block) {
      row.classList.add("sc-foldable");
      row.addEventListener("dblclick", () => fold(row, !row.classList.contains("sc-folded")));
    }
  });

  // A block row folds its descendants away (double-click, or the left and right arrow keys),
  // as --depth does in the text table: 12 BertLayer rows instead of every layer inside them.
  function fold(row, folded) {
    const name = nameOf(row);
    if (!data.layers[name] || !data.layers[name].is_block) return;
    row.classList.toggle("sc-folded", folded);
    const inside = name + ".";
    rows.forEach((r) => {
      const other = nameOf(r);
      if (!other.startsWith(inside)) return;
      const hidden = rows.some((b) => b.classList.contains("sc-folded")
        && other.startsWith(nameOf(b) + "."));
      r.classList.toggle("sc-folded-away", hidden);
    });
  }

  function make(tag, attrs, parent, text) {
    const node = tag.startsWith("svg:") ? document.createElementNS(NS, tag.slice(4))
                                        : document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  const shape = (s) => s.join("×");
  const count = (n) => (n === null ? "?" : n.toLocaleString("en-US"));  // null: MACs unknown

  // The drawn node standing for a name: itself, or the collapsed block that holds it.
  function drawnNode(name) {
    const parts = name.split(".");
    for (let i = parts.length; i > 0; i--) {
      const node = nodeOf.get(parts.slice(0, i).join("."));
      if (node) return node;
    }
    return null;
  }

  function select(name) {
    const rec = data.layers[name];
    if (!rec) return;
    rows.forEach((r) => r.classList.toggle("sc-selected", nameOf(r) === name));
    const row = rowOf.get(name);
    if (row && !row.classList.contains("sc-hidden")) row.scrollIntoView({ block: "nearest" });
    const node = drawnNode(name);
    nodeOf.forEach((g) => g.classList.toggle("sc-selected", g === node));
    showDetails(rec);
  }

  function showDetails(rec) {
    details.replaceChildren();
    make("h2", {}, details, rec.name);
    make("p", { class: "sc-description" }, details, rec.description);
    const dl = make("dl", {}, details);
    const facts = [["type", rec.is_block ? rec.type + " (block)" : rec.type],
      ["input", rec.input_shapes.map(shape).join(" + ")], ["output", shape(rec.output_shape)],
      ["params", count(rec.params)], ["MACs", count(rec.macs)], ["receptive field", rec.rf_text]];
    for (const [term, value] of facts) { make("dt", {}, dl, term); make("dd", {}, dl, value); }

    make("h3", {}, details, "Arithmetic");
    if (rec.explain.length) {
      make("pre", { class: "sc-arithmetic" }, details, rec.explain.join("\n"));
    } else {
      make("p", { class: "sc-caption" }, details, rec.is_block
        ? "A block: its layers' rows hold the arithmetic; its row sums their costs."
        : "Nothing to work out: no parameters, and the output shape follows from the input's (see the notes).");
    }
    make("h3", {}, details, "Notes");
    if (rec.notes.length) {
      const ul = make("ul", { class: "sc-notes" }, details);
      rec.notes.forEach((note) => make("li", {}, ul, note));
    } else {
      make("p", { class: "sc-caption" }, details, "none");
    }
    make("h3", {}, details, "Receptive field");
    receptiveField(rec, details);
  }

  // Per drawn axis (rows, columns): the field's period tables, its part inside the image per
  // output index, input and output size.
  function axesOf(rec) {
    const spatial = data.input_shape.slice(2);
    let axes = rec.rf.map((a, i) => Object.assign({}, a, {
      n: spatial[i], out: rec.output_shape[2 + i] || 1 }));
    if (axes.length > 2) axes = axes.slice(-2);
    if (axes.length === 1) {
      axes = [{ size: 1, jump: 1, lo: [0], hi: [0], shift: 1, inside: [[0, 0]], n: 1, out: 1 }, axes[0]];
    }
    return axes;
  }

  // Output o along one axis: the pixels it reads in theory (on an unbounded input) and the part
  // inside the image (borders clip every layer on the way); null where it reads none.
  function field(axis, o) {
    const period = axis.lo.length, turns = Math.floor(o / period), i = o % period;
    const theory = axis.lo[i] === null ? null
      : { lo: axis.lo[i] + turns * axis.shift, hi: axis.hi[i] + turns * axis.shift };
    const inside = axis.inside[o] ? { lo: axis.inside[o][0], hi: axis.inside[o][1] } : null;
    return { theory, inside };
  }

  const span = (f) => (f ? f.hi - f.lo + 1 : 0);

  function receptiveField(rec, parent) {
    if (rec.rf === null) {
      make("p", { class: "sc-caption" }, parent,
        "global: every output value sees the whole input (after a flatten, linear or global pool).");
      return;
    }
    if (rec.rf === "unknown") {
      make("p", { class: "sc-caption" }, parent,
        "unknown: a layer on the way has no receptive-field rule (shown as ? in the table).");
      return;
    }
    if (rec.rf.length === 0) { make("p", { class: "sc-caption" }, parent, "no spatial axes"); return; }
    const axes = axesOf(rec);
    const oneAxis = rec.rf.length === 1;  // a sequence: one row of positions
    const pick = make("p", { class: "sc-pick" }, parent, oneAxis ? "output position " : "output pixel ");
    const inputs = axes.map((axis, i) => {
      const box = make("input", { type: "number", min: 0, max: axis.out - 1, value: 0,
        "aria-label": i ? "output column" : "output row" }, pick);
      if (axis.out <= 1) box.disabled = true;
      if (oneAxis && i === 0) box.hidden = true;
      return box;
    });
    const caption = make("p", { class: "sc-caption sc-rf-caption" }, parent);
    const views = make("div", { class: "sc-rf-views" }, parent);
    function redraw() {
      const o = inputs.map((box, i) => Math.max(0, Math.min(axes[i].out - 1, Math.floor(+box.value || 0))));
      const [fh, fw] = [field(axes[0], o[0]), field(axes[1], o[1])];
      const theory = span(fh.theory) * span(fw.theory), inside = span(fh.inside) * span(fw.inside);
      const rest = theory - inside;
      const c = count;  // every number with its thousands separators: "21,125 of them padding"
      const r = (f) => (f ? `${c(f.lo)}…${c(f.hi)}` : "none");
      caption.textContent = oneAxis
        ? `output position ${c(o[1])} reads input positions ${r(fw.theory)} in theory ` +
          `(${c(span(fw.theory))} positions; at most ${c(axes[1].size)} for any output); inside the ` +
          `${c(axes[1].n)} positions of the input it reads ${r(fw.inside)} (${c(span(fw.inside))}), ` +
          `${c(rest)} of the field being padding or cut off by earlier layers' borders; ` +
          `neighbouring outputs are ${c(axes[1].jump)} positions apart.`
        : `output pixel (${c(o[0])}, ${c(o[1])}) reads input rows ${r(fh.theory)} and columns ` +
          `${r(fw.theory)} in theory (${c(span(fh.theory))}×${c(span(fw.theory))} pixels; at most ` +
          `${c(axes[0].size)}×${c(axes[1].size)} for any output); inside the ` +
          `${c(axes[0].n)}×${c(axes[1].n)} image it reads rows ${r(fh.inside)} and columns ` +
          `${r(fw.inside)} (${c(span(fh.inside))}×${c(span(fw.inside))}), ${c(rest)} of the ` +
          `field's pixels being padding or cut off by earlier layers' borders; neighbouring ` +
          `outputs are ${c(axes[0].jump)}×${c(axes[1].jump)} pixels apart.`;
      views.replaceChildren();
      if (!fh.theory || !fw.theory) return;  // an output no input reaches (a transposed conv's gap)
      view(axes, [fh, fw], "closeup", "close-up, to scale (hatched: outside the image; " +
        "outline: the field in theory; filled: what it reads in the image)", views);
      view(axes, [fh, fw], "whole", "the whole input, to scale", views);
    }
    inputs.forEach((box) => box.addEventListener("input", redraw));
    redraw();
  }

  // One drawing: the window of input pixels around the field (close-up) or the whole input.
  function view(axes, fields, mode, title, parent) {
    const windows = axes.map((axis, i) => {
      const f = fields[i].theory;
      return mode === "closeup"
        ? [f.lo - 2, f.hi + 2]
        : [Math.min(f.lo, 0) - 1, Math.max(f.hi, axis.n - 1) + 1];
    });
    const cells = Math.max(windows[0][1] - windows[0][0] + 1, windows[1][1] - windows[1][0] + 1);
    const cell = mode === "closeup" ? Math.max(2, Math.min(18, Math.floor(300 / cells))) : 300 / cells;
    const width = (windows[1][1] - windows[1][0] + 1) * cell;
    const height = (windows[0][1] - windows[0][0] + 1) * cell;
    const id = "sc-rf-" + (++svgCount);
    const figure = make("figure", {}, parent);
    const svg = make("svg:svg", { class: "sc-rf sc-rf-" + mode, width, height,
      viewBox: `0 0 ${width} ${height}`, "data-cell": cell, role: "img" }, figure);
    const defs = make("svg:defs", {}, svg);
    const hatch = make("svg:pattern", { id: id + "-pad", width: 6, height: 6,
      patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, defs);
    make("svg:rect", { width: 6, height: 6, fill: "#e9ecef" }, hatch);
    make("svg:line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#adb5bd", "stroke-width": 2 }, hatch);
    make("svg:rect", { class: "sc-rf-padding", width, height, fill: `url(#${id}-pad)` }, svg);
    const x0 = -windows[1][0] * cell, y0 = -windows[0][0] * cell;
    make("svg:rect", { class: "sc-rf-input", x: x0, y: y0, width: axes[1].n * cell,
      height: axes[0].n * cell, fill: "#ffffff", stroke: "#495057" }, svg);
    if (cell >= 4) {
      const grid = make("svg:pattern", { id: id + "-grid", width: cell, height: cell,
        patternUnits: "userSpaceOnUse", x: x0, y: y0 }, defs);
      make("svg:path", { d: `M ${cell} 0 L 0 0 0 ${cell}`, fill: "none", stroke: "#ced4da",
        "stroke-width": 1 }, grid);
      make("svg:rect", { x: x0, y: y0, width: axes[1].n * cell, height: axes[0].n * cell,
        fill: `url(#${id}-grid)` }, svg);
    }
    const [fh, fw] = fields.map((f) => f.theory);
    const [ih, iw] = fields.map((f) => f.inside);
    if (ih && iw) {
      make("svg:rect", { class: "sc-rf-inside", x: x0 + iw.lo * cell, y: y0 + ih.lo * cell,
        width: span(iw) * cell, height: span(ih) * cell, fill: "rgba(214, 51, 108, 0.25)",
        "data-pixels-h": span(ih), "data-pixels-w": span(iw) }, svg);
    }
    make("svg:rect", { class: "sc-rf-field", x: x0 + fw.lo * cell, y: y0 + fh.lo * cell,
      width: span(fw) * cell, height: span(fh) * cell, fill: "none",
      stroke: "#d6336c", "stroke-width": Math.min(2, Math.max(1, cell / 4)),
      "data-pixels-h": span(fh), "data-pixels-w": span(fw) }, svg);
    make("svg:rect", { class: "sc-rf-centre", x: x0 + ((fw.lo + fw.hi) / 2) * cell + cell / 4,
      y: y0 + ((fh.lo + fh.hi) / 2) * cell + cell / 4, width: cell / 2, height: cell / 2,
      fill: "#d6336c" }, svg);
    make("figcaption", {}, figure, `${title}: 1 pixel = ${+cell.toFixed(2)} px`);
  }

  // Filter: rows whose name, layer, type or notes contain the text; graph nodes without a
  // matching row are dimmed.
  const filter = document.getElementById("sc-filter");
  const counter = document.getElementById("sc-count");
  function applyFilter() {
    const q = filter.value.trim().toLowerCase();
    const shown = new Set();
    rows.forEach((row) => {
      const rec = data.layers[nameOf(row)];
      const text = [rec.name, rec.description, rec.type, rec.notes.join(" ")].join(" ").toLowerCase();
      const hit = !q || text.includes(q);
      row.classList.toggle("sc-hidden", !hit);
      if (hit) shown.add(rec.name);
    });
    nodeOf.forEach((g, name) => {
      const hit = !q || shown.has(name) || [...shown].some((n) => n.startsWith(name + "."));
      g.classList.toggle("sc-dim", !hit);
    });
    counter.textContent = q ? `${shown.size} of ${rows.length} rows` : `${rows.length} rows`;
  }
  filter.addEventListener("input", applyFilter);
  applyFilter();

  const fit = document.getElementById("sc-fit");
  if (fit) fit.addEventListener("click", () => document.getElementById("sc-graph").classList.toggle("sc-fit"));
})();
