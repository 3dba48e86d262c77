"""The per-layer table of ``shapecalc show`` and ``Analysis.table()``, fitted to a width.

Nested models read as a tree, with torchinfo's ``├─``/``└─`` guides; ``depth`` collapses
blocks into one row that sums its children. The identity columns (``#``, ``name`` when it says
more than the index, ``layer``) are always shown and never cut; the rows come from
:mod:`.table_rows`, the data columns from :mod:`.columns`.

Given a width (a terminal's), the table degrades step by step until every row fits on one
line: notes move into numbered footnotes, then the wide-only columns go, then numbers turn
compact (``26.2M``), then the receptive field goes, and so on (:data:`LADDER`). Without a
width (pipes, files) it is the full default table, the same whatever terminal runs it.

The layout is computed once as lines of styled segments; the terminal (rich, for colour) and
plain text draw the same segments, so they never differ in content or alignment.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Iterable, Sequence

from shapecalc.core.safetext import printable
from shapecalc.output.registry import renderer
from shapecalc.output.columns import BY_KEY, WIDE_EXTRAS, cell, default_columns, note_texts, parse_columns
from shapecalc.output.table_rows import (  # re-exported: the rows are part of this module's public face
    KIND_STYLES, Row, TableModel, row_description, table_model, torch_cell, tree_labels,
)

GAP = "  "  # between columns (one space only as the ladder's last resort)


def display_width(text: str) -> int:
    """Terminal cells ``text`` takes: wide East Asian characters count 2, combining marks 0."""
    if text.isascii():
        return len(text)
    return _unicode_width(text)


@lru_cache(maxsize=4096)
def _unicode_width(text: str) -> int:  # cached: shapes and guides repeat row after row
    import unicodedata

    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in "WF" else 1
    return width


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * (width - display_width(text))
    return fill + text if right else text + fill


@dataclass(frozen=True)
class Layout:
    """Which columns, in which form: what the width-fitting ladder changes step by step."""

    keys: tuple[str, ...]
    index: bool = True
    footnotes: bool = False
    compact: bool = False
    gap: int = len(GAP)


#: Steps tried in order until the table fits: (what, column) — later steps cost more.
LADDER: tuple[tuple[str, str], ...] = (
    ("footnotes", ""), ("drop", "params_percent"), ("drop", "input_size"), ("drop", "trainable"),
    ("compact", ""), ("drop", "receptive_field"), ("drop_index", ""), ("tight", ""),
    ("drop", "mult_adds"),
)


def _step(layout: Layout, what: str, key: str, has_name: bool) -> Layout | None:
    """``layout`` after one ladder step, or ``None`` when the step changes nothing."""
    if what == "footnotes":
        return None if layout.footnotes or "notes" not in layout.keys else replace(layout, footnotes=True)
    if what == "compact":
        numeric = {"num_params", "mult_adds"} & set(layout.keys)
        return None if layout.compact or not numeric else replace(layout, compact=True)
    if what == "tight":
        return replace(layout, gap=1) if layout.gap > 1 else None
    if what == "drop_index":  # a tree keeps its names; flat models keep their index
        return replace(layout, index=False) if layout.index and has_name else None
    if key in layout.keys:
        return replace(layout, keys=tuple(k for k in layout.keys if k != key))
    return None


@dataclass
class Drawn:
    """A laid-out table: each line a list of (text, style) segments."""

    lines: list[list[tuple[str, str]]]
    layout: Layout
    width: int  # of the widest table line (title and footer not counted)


def _columns_for(model: TableModel, layout: Layout) -> list[tuple[str, bool, list[str]]]:
    """(title, right-justified, cells) for every shown column under ``layout``."""
    ctx = model.context()
    cols: list[tuple[str, bool, list[str]]] = []
    if layout.index:
        cols.append(("#", True, [r.index for r in model.rows]))
    if model.has_name:
        cols.append(("name", False, [r.label for r in model.rows]))
    cols.append(("layer", False, [row_description(r) for r in model.rows]))
    notes = _notes(model, layout)
    for key in layout.keys:
        if key == "notes":
            if model.checks is not None:
                cols.append(_torch_column(model))
            if notes is not None:
                cols.append(("notes", False, notes[0]))
            continue
        cols.append((BY_KEY[key].title, BY_KEY[key].right,
                     [cell(key, r.record, ctx, layout.compact) for r in model.rows]))
    if model.checks is not None and "notes" not in layout.keys:
        cols.append(_torch_column(model))
    return cols


def _torch_column(model: TableModel) -> tuple[str, bool, list[str]]:
    return ("torch", False, [torch_cell(model.checks.get(r.record.name)) for r in model.rows])


def _notes(model: TableModel, layout: Layout) -> tuple[list[str], list[str]] | None:
    """(cells, footnote texts); ``None`` when no row has a note (the column is left out)."""
    per_row = [note_texts(r.record) for r in model.rows]
    if not any(per_row):
        return None
    if not layout.footnotes:
        return ["; ".join(n) for n in per_row], []
    numbers: dict[str, int] = {}
    cells = []
    for texts in per_row:
        marks = [numbers.setdefault(t, len(numbers) + 1) for t in texts]
        cells.append("[" + ",".join(map(str, marks)) + "]" if marks else "")
    return cells, list(numbers)


def _table_width(cols: list[tuple[str, bool, list[str]]], gap: int) -> int:
    widths = [max([display_width(t)] + [display_width(c) for c in cells]) for t, _, cells in cols]
    return sum(widths) + gap * (len(widths) - 1)


def choose_layout(model: TableModel, width: int | None = None,
                  columns: Sequence[str] | None = None) -> Layout:
    """The richest layout that fits ``width`` (``None``: the full default, for pipes).

    Chosen ``columns`` are kept as given (only their form changes); otherwise a terminal
    starts from the defaults plus :data:`WIDE_EXTRAS` and walks down :data:`LADDER`.
    """
    wanted = list(columns) if columns is not None else default_columns(model.analysis)
    if columns is None and model.frozen:
        wanted.insert(wanted.index("mult_adds") + 1, "trainable")
    if columns is None and width is not None:
        order = [c for c in BY_KEY]
        wanted = sorted(set(wanted) | set(WIDE_EXTRAS), key=order.index)
    layout = Layout(tuple(wanted))
    if width is None:
        return layout
    for what, key in LADDER:
        if _table_width(_columns_for(model, layout), layout.gap) <= width:
            return layout
        if columns is not None and what not in ("footnotes", "compact", "tight"):
            continue  # the user's columns stay; only their form may change
        layout = _step(layout, what, key, model.has_name) or layout
    return layout


def draw(model: TableModel, layout: Layout, width: int | None = None) -> Drawn:
    """Lay ``model`` out under ``layout``: title, header, rule, rows, footnotes, footer."""
    cols = _columns_for(model, layout)
    widths = [max([display_width(t)] + [display_width(c) for c in cells]) for t, _, cells in cols]
    gap = " " * layout.gap
    table_width = sum(widths) + len(gap) * (len(widths) - 1)
    layer_at = sum(w + len(gap) for (title, _, _), w in zip(cols, widths)
                   if title in ("#", "name"))
    # the title may hold several lines (a model with several inputs or outputs names each)
    lines: list[list[tuple[str, str]]] = [[(part, "bold")] for part in model.title.split("\n")]

    def joined(texts: list[str], styles: list[str]) -> list[tuple[str, str]]:
        segs: list[tuple[str, str]] = []
        for i, (text, style) in enumerate(zip(texts, styles)):
            if i:
                segs.append((gap, ""))
            segs.append((_pad(text, widths[i], cols[i][1]), style))
        return segs

    lines.append(joined([t for t, _, _ in cols], ["bold"] * len(cols)))
    lines.append([("─" * table_width, "dim")])
    for r, row in enumerate(model.rows):
        styles = []
        for title, _, _ in cols:
            if title == "layer":
                styles.append(row.style)
            elif title == "#":
                styles.append("dim")
            else:
                styles.append(row.row_style)
        lines.append(joined([cells[r] for _, _, cells in cols], styles))
        for detail in row.details:
            lines.append([(" " * layer_at + detail, "italic dim")])
    notes = _notes(model, layout)
    if layout.footnotes and notes is not None:
        for number, text in enumerate(notes[1], 1):
            lines.extend([(part, "")] for part in _wrap(f"[{number}] {text}", width,
                                                        len(f"[{number}] ")))
    for text in model.footer:
        lines.extend([(part, "")] for part in _wrap(text, width, 2))
    return Drawn(lines, layout, table_width)


def _wrap(text: str, width: int | None, indent: int) -> list[str]:
    """Footer and footnote lines fit a terminal; without a width they stay one line.

    Lines made of ``a · b · c`` parts break between parts, so a number keeps its unit.
    """
    if width is None or display_width(text) <= width:
        return [text]
    if " · " in text:
        lines: list[str] = []
        for part in text.split(" · "):
            if lines and display_width(lines[-1] + " · " + part) <= width:
                lines[-1] += " · " + part
            else:
                lines.append(("" if not lines else " " * indent) + part)
        if all(display_width(line) <= width for line in lines):
            return lines
    import textwrap

    glued = text.replace(" = ", "\xa0=\xa0")  # keep "FLOPs = 2·MACs" on one line
    lines = textwrap.wrap(glued, width=width, subsequent_indent=" " * indent,
                          break_long_words=False, break_on_hyphens=False) or [glued]
    return [line.replace("\xa0=\xa0", " = ") for line in lines]


def layout_table(analysis, depth: int | None = None, explain: bool = False,
                 checks: Iterable | None = None, columns: Sequence[str] | None = None,
                 width: int | None = None, ops: bool = False) -> Drawn:
    """Build, fit and lay out the table of ``analysis`` in one call."""
    model = table_model(analysis, depth, explain, checks, ops)
    return draw(model, choose_layout(model, width, columns), width)


def plain_lines(drawn: Drawn) -> list[str]:
    """The laid-out table as plain text lines, right-trimmed (pipes, files, notebooks)."""
    return ["".join(text for text, _ in line).rstrip() for line in drawn.lines]


def print_analysis(analysis, console, depth: int | None = None, explain: bool = False,
                   checks: Iterable | None = None, columns: Sequence[str] | None = None,
                   width: int | None = None, ops: bool = False) -> None:
    """The table on a rich ``console`` in colour; the same lines :func:`plain_lines` gives."""
    from rich.text import Text

    drawn = layout_table(analysis, depth, explain, checks, columns, width, ops)
    for line in drawn.lines:
        text = Text()
        for part, style in line:
            text.append(printable(part), style=style or None)
        text.rstrip()
        console.print(text, soft_wrap=True, highlight=False)


def capture_text(draw_on, width: int = 240) -> str:
    """Run ``draw_on(console)`` on a colourless rich console and return its text, trailing
    blanks stripped (for renderables other than the analysis table, such as ``shapecalc models``)."""
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False,
                      highlight=False, emoji=False)
    draw_on(console)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


@renderer("table", summary="the table as plain text", suffixes=("txt",), commands=("show",))
def render_table_text(analysis, depth: int | None = None, explain: bool = False,
                      checks: Iterable | None = None, columns: Sequence[str] | None = None,
                      width: int | None = None, ops: bool = False) -> str:
    """The table as plain text (no colours, no rich); fitted to ``width`` when one is given.

    ``columns``: :mod:`.columns` keys or short names, in the order to show them; ``ops``: also
    the rows of an imported module's functional glue (adds, views, masks).
    """
    if columns is not None:
        columns = parse_columns(columns, "columns")
    drawn = layout_table(analysis, depth, explain, checks, columns, width, ops)
    return "\n".join(plain_lines(drawn)) + "\n"


__all__ = [
    "GAP", "KIND_STYLES", "LADDER", "Drawn", "Layout", "Row", "TableModel", "capture_text",
    "choose_layout", "display_width", "draw", "layout_table", "plain_lines", "print_analysis",
    "render_table_text", "row_description", "table_model", "torch_cell", "tree_labels",
]
