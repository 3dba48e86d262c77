"""The rich table of ``shapecalc show``: one row per layer (and per block), then the totals.

Nested models read as a tree, with torchinfo's ``├─``/``└─`` guides; ``depth`` collapses
blocks into one row that sums its children. The table is built once and printed either to the
terminal (colours) or into a string (``Analysis.table()``, non-TTY output), so the two never
differ in content.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ..renderers import renderer
from . import notes_text, rf_text, shape_text
from .formats import footer_lines

#: Row styles by layer kind: the same grouping the graph colours use.
KIND_STYLES = {
    "conv": "cyan", "pool": "magenta", "norm": "yellow", "activation": "green",
    "linear": "blue", "reshape": "white", "merge": "bright_white", "dropout": "bright_black",
}


def _parent(name: str, blocks: dict) -> str | None:
    """The innermost block that holds ``name`` (``None`` at the top level)."""
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in blocks:
            return prefix
    return None


def tree_labels(rows: Sequence, blocks: dict) -> list[str]:
    """Display names with tree guides for ``rows`` (tree order, as ``Analysis.rows`` gives).

    Each row shows its name relative to its parent block; the guide before it says whether it
    is its parent's last shown child (``└─``) and which ancestors still have children below
    (``│``). Without blocks the names are printed as they are.
    """
    if not blocks:
        return [r.name for r in rows]
    parents = [_parent(r.name, blocks) for r in rows]
    last_child: dict[str | None, int] = {}
    for i, parent in enumerate(parents):
        last_child[parent] = i
    position = {r.name: i for i, r in enumerate(rows)}
    labels = []
    for i, (row, parent) in enumerate(zip(rows, parents)):
        guides = []
        ancestor = parent
        while ancestor is not None:  # walk up: does each ancestor have later siblings?
            grand = _parent(ancestor, blocks)
            guides.append("  " if last_child.get(grand) == position.get(ancestor, -1) else "│ ")
            ancestor = grand
        guide = "".join(reversed(guides)) + ("└─" if last_child[parent] == i else "├─")
        relative = row.name[len(parent) + 1:] if parent else row.name
        labels.append(guide + relative)
    return labels


def _checks_by_name(checks: Iterable | None) -> dict[str, Any] | None:
    if checks is None:
        return None
    return {c.name: c for c in checks}


def _torch_cell(check) -> str:
    if check is None or check.torch is None:
        return "·"  # merge nodes have no module to hook; their block row is checked instead
    if check.ok:
        return "✓"
    return f"✗ {shape_text(check.torch)}"


@dataclass
class Row:
    """One table row as text: ``cells`` in column order; ``lines`` > 1 only for --explain."""

    cells: list[str]
    style: str = ""  # the layer cell's style (by kind)
    row_style: str = ""  # dim for expanded blocks (their children carry the numbers)


@dataclass
class TableModel:
    """What both renderers draw: columns (title, right-justified?) and rows of plain strings."""

    columns: list[tuple[str, bool]]
    rows: list[Row] = field(default_factory=list)
    title: str = ""
    footer: list[str] = field(default_factory=list)


def table_model(analysis, depth: int | None = None, explain: bool = False,
                checks: Iterable | None = None) -> TableModel:
    """The table's content, independent of how it is drawn (``checks``: ``--verify`` results)."""
    by_name = _checks_by_name(checks)
    rows = list(analysis.rows(depth))
    labels = tree_labels(rows, analysis.blocks)
    index = {r.name: i for i, r in enumerate(analysis.records)}
    columns = [("#", True), ("name", False), ("layer", False), ("output shape", False),
               ("params", True), ("MACs", True), ("RF", True)]
    if by_name is not None:
        columns.append(("torch", False))
    columns.append(("notes", False))
    model = TableModel(
        columns,
        title=f"{analysis.model}  input {shape_text(analysis.input_shape)} → output "
              f"{shape_text(analysis.output_shape)}",
        footer=footer_lines(analysis),
    )
    for rec, label in zip(rows, labels):
        kind = "block" if rec.is_block else (rec.layer.kind if rec.layer is not None else "other")
        collapsed = rec.is_block and depth is not None and rec.depth >= depth
        cells = [
            "" if rec.is_block else str(index[rec.name]),
            label,
            rec.description + (" (collapsed)" if collapsed else ""),
            shape_text(rec.output_shape),
            f"{rec.params:,}",
            f"{rec.macs:,}",
            rf_text(rec.rf),
        ]
        if by_name is not None:
            cells.append(_torch_cell(by_name.get(rec.name)))
        cells.append(notes_text(rec))
        model.rows.append(Row(cells, "bold" if rec.is_block else KIND_STYLES.get(kind, ""),
                              "dim" if rec.is_block and not collapsed else ""))
        if explain and not rec.is_block:
            lines = rec.explain()
            if lines:
                blank = [""] * len(cells)
                blank[2] = "\n".join(lines)
                model.rows.append(Row(blank, "italic dim"))
    return model


def build_table(model: TableModel):
    """The model as a :class:`rich.table.Table` (for terminals: colours, terminal width)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for title, right in model.columns:
        table.add_column(title, justify="right" if right else "left",
                         no_wrap=title not in ("layer", "notes"), style="dim" if title == "#" else None)
    for row in model.rows:
        cells: list[Any] = list(row.cells)
        cells[2] = Text(cells[2], style=row.style)
        table.add_row(*cells, style=row.row_style or None)
    return table


def print_analysis(analysis, console, depth: int | None = None, explain: bool = False,
                   checks: Iterable | None = None) -> None:
    """Title, table and totals on a rich ``console``."""
    from rich.text import Text

    model = table_model(analysis, depth, explain, checks)
    console.print(Text(model.title, style="bold"))
    console.print(build_table(model))
    for line in model.footer:
        console.print(line, highlight=False, soft_wrap=True)


def plain_lines(model: TableModel) -> list[str]:
    """The model as aligned text without rich: what pipes, files and ``Analysis.table()`` get.

    Laid out as rich lays out the terminal table (three spaces between columns, a rule under
    the header), so piped and terminal output read the same; it skips importing rich, which is
    a third of ``shapecalc show``'s start-up.
    """
    expanded: list[list[str]] = []  # one physical line per explain line
    for row in model.rows:
        parts = [cell.split("\n") for cell in row.cells]
        for i in range(max(len(p) for p in parts)):
            expanded.append([p[i] if i < len(p) else "" for p in parts])
    header = [title for title, _ in model.columns]
    widths = [max([len(header[c])] + [len(line[c]) for line in expanded]) for c in range(len(header))]

    def fmt(cells: list[str]) -> str:
        out = [cell.rjust(w) if right else cell.ljust(w)
               for cell, w, (_, right) in zip(cells, widths, model.columns)]
        return "   ".join(out).rstrip()

    width = sum(widths) + 3 * (len(widths) - 1)
    return [model.title, fmt(header), "─" * width, *(fmt(line) for line in expanded), *model.footer]


def capture_text(draw, width: int = 240) -> str:
    """Run ``draw(console)`` on a colourless rich console and return its text, trailing blanks
    stripped (for renderables other than the analysis table, such as ``shapecalc models``)."""
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False,
                      highlight=False, emoji=False)
    draw(console)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


@renderer("table", summary="the table as plain text", suffixes=("txt",), commands=("show",))
def render_table_text(analysis, depth: int | None = None, explain: bool = False,
                      checks: Iterable | None = None) -> str:
    """The table as plain text (no colours, no rich)."""
    return "\n".join(plain_lines(table_model(analysis, depth, explain, checks))) + "\n"


__all__ = [
    "KIND_STYLES", "Row", "TableModel", "build_table", "capture_text", "plain_lines",
    "print_analysis", "render_table_text", "table_model", "tree_labels",
]
