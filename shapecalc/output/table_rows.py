"""What the per-layer table shows, before any format lays it out: one :class:`Row` per layer
and block in tree order (``depth`` collapses blocks into one row that sums its children), with
its index, its tree label (torchinfo's ``├─``/``└─`` guides), the explain lines under it and the
torch check beside it. The text table (:mod:`.table`) and the HTML table (:mod:`.html_table`)
both draw these rows, so they never disagree on what a row says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from shapecalc.core.arithmetic import FieldRule
from shapecalc.core.arithmetic.field_axes import Placed
from shapecalc.core.image_fields import fields_in_image
from shapecalc.core.layers.base import AXIS_NAMES
from shapecalc.output import header_lines, mode_text, record_kind, shape_text
from shapecalc.output.columns import CellContext, frozen_params
from shapecalc.output.formats import footer_lines
from shapecalc.output.palette import PALETTE

#: Row styles by layer kind: the terminal shades of the one palette (:mod:`.palette`).
KIND_STYLES = {kind: colour.terminal for kind, colour in PALETTE.items() if colour.terminal}


def tree_labels(rows: Sequence, analysis) -> list[str]:
    """Display names with tree guides for ``rows`` (tree order, as ``Analysis.rows`` gives).

    Each row shows its name relative to its parent block; the guide before it says whether it
    is its parent's last shown child (``└─``) and which ancestors still have children below
    (``│``). Without blocks the names are printed as they are.
    """
    if not analysis.blocks:
        return [r.name for r in rows]
    parents = [analysis.parent(r.name) for r in rows]
    last_child: dict[str | None, int] = {}
    for i, parent in enumerate(parents):
        last_child[parent] = i
    position = {r.name: i for i, r in enumerate(rows)}
    labels = []
    for i, (row, parent) in enumerate(zip(rows, parents)):
        guides = []
        ancestor = parent
        while ancestor is not None:  # walk up: does each ancestor have later siblings?
            grand = analysis.parent(ancestor)
            guides.append("  " if last_child.get(grand) == position.get(ancestor, -1) else "│ ")
            ancestor = grand
        guide = "".join(reversed(guides)) + ("└─" if last_child[parent] == i else "├─")
        relative = row.name[len(parent) + 1:] if parent else row.name
        labels.append(guide + relative)
    return labels


def torch_cell(check) -> str:
    if check is None or check.torch is None:
        return "·"  # merge nodes have no module to hook; their block row is checked instead
    if check.ok:
        return "✓"
    return f"✗ {shape_text(check.torch)}"


@dataclass
class Row:
    """One table row: its record, the tree label, styles, and explain lines under it."""

    record: Any
    index: str
    label: str
    style: str = ""  # the layer cell's style (by kind)
    row_style: str = ""  # dim for expanded blocks (their children carry the numbers)
    details: list[str] = field(default_factory=list)
    collapsed: bool = False  # a block row standing for its hidden children


@dataclass
class TableModel:
    """Everything the table shows, before a layout picks columns and forms."""

    analysis: Any
    rows: list[Row]
    has_name: bool
    title: str
    footer: list[str]
    checks: dict | None = None
    frozen: dict[str, int] = field(default_factory=dict)

    def context(self) -> CellContext:
        return CellContext(self.analysis.total_params, self.frozen)


def table_model(analysis, depth: int | None = None, explain: bool = False,
                checks: Iterable | None = None, ops: bool = False) -> TableModel:
    """The table's rows (tree order, cut at ``depth``; an imported module's functional glue
    only with ``ops``), independent of columns and width."""
    records = list(analysis.rows(depth, ops))
    fields = field_lines(analysis) if explain else {}
    labels = tree_labels(records, analysis)
    index = {r.name: i for i, r in enumerate(analysis.records)}
    rows = []
    has_name = bool(analysis.blocks)
    for rec, label in zip(records, labels):
        kind = record_kind(rec)
        collapsed = rec.is_block and depth is not None and rec.depth >= depth
        number = "" if rec.is_block else str(index[rec.name])
        has_name = has_name or label != number  # a flat Sequential's names repeat the index
        rows.append(Row(
            rec, number, label,
            "bold" if rec.is_block else KIND_STYLES.get(kind, ""),
            "dim" if rec.is_block and not collapsed else "",
            rec.explain() + fields.get(rec.name, []) if explain and not rec.is_block else [], collapsed,
        ))
    return TableModel(
        analysis, rows, has_name,
        title="\n".join([f"{analysis.model}  input {shape_text(analysis.input_shape)} → output "
                         f"{shape_text(analysis.output_shape)}"
                         + (f"  ({mode_text(analysis)})" if mode_text(analysis) else ""),
                         *header_lines(analysis, with_mode=False)]),
        footer=footer_lines(analysis),
        checks=None if checks is None else {c.name: c for c in checks},
        frozen=frozen_params(analysis),
    )


def field_lines(analysis) -> dict[str, list[str]]:
    """``--explain``'s receptive-field lines per node: per axis the most pixels an output reads
    in theory and how far apart outputs are, and what the first and last outputs read inside
    the image (:func:`~shapecalc.core.image_fields.fields_in_image`), e.g. AlexNet's '5': rows
    −20…46 in theory but 0…42 of the image for output 0. The node where the field becomes
    unknown says so; a global field adds nothing (the RF column says it)."""
    inside = fields_in_image(analysis)
    graph = analysis.graph
    sources = {n.name: n.inputs for n in graph.nodes} if graph is not None else {}
    rfs = {r.name: r.rf for r in analysis.records}
    lines: dict[str, list[str]] = {}
    for rec in analysis.records:
        rf = rec.rf
        if rf is FieldRule.UNKNOWN:
            before = [rfs.get(s) for s in sources.get(rec.name, ())]
            if all(b is not FieldRule.UNKNOWN for b in before):
                moved = next((b.where for b in before if isinstance(b, Placed)), None)
                why = (f"{rec.type} reads the last axes, but the fields sit on axes "
                       f"{', '.join(str(w.axis) for w in moved)} (channels-last)" if moved
                       else f"{rec.type} has no receptive-field rule")
                lines[rec.name] = [f"RF: unknown from here: {why}"]
            continue
        spans = inside.get(rec.name)
        if not rf or not isinstance(spans, tuple):
            continue
        before = sources.get(rec.name, ())
        if len(before) == 1 and rfs.get(before[0], rf) == rf and inside.get(before[0]) == spans:
            continue  # an element-wise layer: the same field as the row before
        names = AXIS_NAMES.get(len(rf), tuple(f"axis {i}" for i in range(len(rf))))
        out, seen = [], {}
        for axis, a, s in zip(names, rf, spans):
            key = (a, s)
            if key in seen:
                out.append(f"RF {axis}: same as {seen[key]}")
                continue
            seen[key] = axis
            read = [b - f + 1 for f, b in (x for x in s if x)]
            first, last = a.bounds(0), a.bounds(len(s) - 1)
            out.append(f"RF {axis}: {a.size} in theory, outputs {a.jump:g} apart; inside the image "
                       f"{_range(read)}: output 0 reads {_span(s[0])} of {_span(first)}, "
                       f"output {len(s) - 1} {_span(s[-1])} of {_span(last)}")
        lines[rec.name] = out
    return lines


def _span(span) -> str:
    return "nothing" if span is None else f"{span[0]}…{span[1]}"


def _range(sizes: list[int]) -> str:
    low, high = min(sizes, default=0), max(sizes, default=0)
    return str(low) if low == high else f"{low} to {high}"


def row_description(row: Row) -> str:
    """The layer cell: the description, marked when the row stands for hidden children."""
    return row.record.description + (" (collapsed)" if row.collapsed else "")


__all__ = ["KIND_STYLES", "Row", "TableModel", "row_description", "table_model", "torch_cell",
           "tree_labels"]
