"""The data columns a table can show, under torchinfo's ``col_names`` where one means the same.

Every renderer that draws the per-layer table (terminal, plain text, HTML) takes its cells
from here, so a column reads the same everywhere. Each column has a full form and, for
numbers, a compact form (``26.2M``) that narrow terminals fall back to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from shapecalc.core.errors import UsageError
from shapecalc.output import macs_cell, output_text, record_notes, rf_text, shape_text
from shapecalc.core.safetext import preview


@dataclass(frozen=True, slots=True)
class Column:
    """One data column: ``key`` is the name users pass (``--columns``, ``col_names``)."""

    key: str
    title: str
    right: bool  # numbers are right-justified
    aliases: tuple[str, ...] = ()
    help: str = ""


#: Every data column in its canonical left-to-right order (a chosen subset keeps this order
#: unless the user gives one). Keys are torchinfo's where torchinfo has the column.
COLUMNS: tuple[Column, ...] = (
    Column("input_size", "input shape", False, ("input", "input_shape"), "shape entering the layer"),
    Column("output_size", "output shape", False, ("output", "output_shape", "shape"),
           "shape leaving the layer"),
    Column("num_params", "params", True, ("params", "parameters"), "parameter count"),
    Column("params_percent", "params %", True, ("percent", "params%", "%"),
           "share of the model's parameters"),
    Column("kernel_size", "kernel", False, ("kernel",), "kernel / window size"),
    Column("mult_adds", "MACs", True, ("macs", "mult-adds"), "multiply-accumulates"),
    Column("trainable", "trainable", False, (), "yes / no / partial (requires_grad)"),
    Column("receptive_field", "RF", True, ("rf",), "receptive field in input pixels"),
    Column("notes", "notes", False, (), "what the engine noticed (dropped pixels, inferred sizes)"),
)
BY_KEY: dict[str, Column] = {c.key: c for c in COLUMNS}
_LOOKUP: dict[str, str] = {name: c.key for c in COLUMNS for name in (c.key, *c.aliases)}

#: What ``shapecalc show`` prints when no columns are chosen, and what pipes always get.
def default_columns(analysis) -> list[str]:
    """:data:`DEFAULT_COLUMNS`, without the receptive field when no input has spatial axes
    (token ids, feature vectors): every row's would read "global"."""
    spatial = any(len(shape) > 2 for shape in getattr(analysis, "input_shapes", ()) or ())
    return [c for c in DEFAULT_COLUMNS if spatial or c != "receptive_field"]


DEFAULT_COLUMNS: tuple[str, ...] = (
    "output_size", "num_params", "mult_adds", "receptive_field", "notes",
)
#: Added on a terminal wide enough for them (dropped first when it is not).
WIDE_EXTRAS: tuple[str, ...] = ("input_size", "params_percent")


def parse_columns(names: str | Iterable[str], option: str = "--columns") -> tuple[str, ...]:
    """``"input,output,params"`` (or a list) → canonical keys in the order given.

    Raises :class:`UsageError` naming ``option`` for an unknown or repeated column.
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    keys: list[str] = []
    for raw in items:
        if not isinstance(raw, str):
            raise UsageError(f"{option}: column names are strings, got {preview(raw)}")
        name = raw.strip().lower()
        if not name:  # "a,,b" or a trailing comma
            continue
        if name not in _LOOKUP:
            raise UsageError(f"{option}: unknown column {raw.strip()!r}; choose from "
                             f"{', '.join(c.key for c in COLUMNS)}")
        key = _LOOKUP[name]
        if key in keys:
            raise UsageError(f"{option}: column {key!r} given twice")
        keys.append(key)
    if not keys:
        raise UsageError(f"{option}: name at least one column, from {', '.join(c.key for c in COLUMNS)}")
    return tuple(keys)


def short_count(n: int) -> str:
    """Three significant digits with a decimal prefix: ``26218496`` → ``26.2M``, ``999`` → ``999``.

    The narrow-terminal form of params and MACs; exact numbers stay in the footer and JSON.
    """
    if abs(n) < 1000:
        return str(n)
    for factor, unit in ((1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T")):
        value = n / factor
        if abs(value) < 999.5 or unit == "T":  # 999.6k rounds to 1000k: say 1M instead
            text = f"{value:.3g}"
            return (f"{value:.0f}" if "e" in text else text) + unit
    return str(n)  # pragma: no cover - the loop always returns


def kernel_text(record) -> str:
    """``11×11`` for Conv2d(k=11); ``-`` for layers without a kernel or window."""
    layer = record.layer
    kernel = getattr(layer, "kernel_size", None) if layer is not None else None
    if kernel is None:
        return "-"
    if isinstance(kernel, int):
        ndim = max(len(record.input_shape) - 2, 1)
        kernel = (kernel,) * ndim
    return "×".join(str(k) for k in kernel)


def trainable_text(record, frozen: Mapping[str, int]) -> str:
    """torchinfo's trainable column: ``yes``, ``no``, ``partial``, or ``-`` without parameters."""
    if record.params == 0:
        return "-"
    held = frozen.get(record.name, 0)
    if held == 0:
        return "yes"
    return "no" if held >= record.params else "partial"


@dataclass
class CellContext:
    """What cells need beyond the record: totals, frozen counts per node."""

    total_params: int
    frozen: Mapping[str, int]


def _percent(record, ctx: CellContext) -> str:
    if record.params == 0 or ctx.total_params == 0:
        return "-"
    return f"{100 * record.params / ctx.total_params:.2f}%"


def _input_text(record) -> str:
    shapes = record.input_shapes
    if not shapes:
        return "-"
    more = f" +{len(shapes) - 1}" if len(shapes) > 1 else ""  # merges: the others are in JSON
    return shape_text(shapes[0]) + more


#: key → (full cell, compact cell or None when the same).
_CELLS: dict[str, tuple[Callable[[Any, CellContext], str], Callable[[Any, CellContext], str] | None]] = {
    "input_size": (lambda r, c: _input_text(r), None),
    "output_size": (lambda r, c: output_text(r), None),
    "num_params": (lambda r, c: f"{r.params:,}", lambda r, c: short_count(r.params)),
    "params_percent": (_percent, None),
    "kernel_size": (lambda r, c: kernel_text(r), None),
    "mult_adds": (lambda r, c: macs_cell(r.macs),
                  lambda r, c: "?" if r.macs is None else short_count(r.macs)),
    "trainable": (lambda r, c: trainable_text(r, c.frozen), None),
    "receptive_field": (lambda r, c: rf_text(r.rf), None),
}


def cell(key: str, record, ctx: CellContext, compact: bool = False) -> str:
    """The text of column ``key`` for ``record`` (not ``notes``: see :func:`note_texts`)."""
    full, short = _CELLS[key]
    return (short or full)(record, ctx) if compact else full(record, ctx)


def note_texts(record) -> list[str]:
    """A record's notes as sentences (typed notes become words here, at the edge)."""
    return [str(note) for note in record_notes(record)]


def frozen_params(analysis) -> dict[str, int]:
    """Node or block name → parameters with ``requires_grad=False`` (empty: everything trains).

    Only analyses of real modules can have frozen parameters; the engine's own models train
    every parameter they declare.
    """
    graph = getattr(analysis, "graph", None)  # an nn.Module's nodes know their frozen share
    if graph is None:
        return {}
    frozen = {n.name: n.frozen for n in graph.nodes if getattr(n, "frozen", 0)}
    if frozen:
        for path, inside in graph.members().items():
            held = sum(frozen.get(name, 0) for name in inside)
            if held:
                frozen[path] = held
    return frozen


def column_titles(keys: Sequence[str]) -> list[str]:
    return [BY_KEY[k].title for k in keys]


__all__ = [
    "BY_KEY", "COLUMNS", "CellContext", "Column", "DEFAULT_COLUMNS", "WIDE_EXTRAS", "cell",
    "default_columns",
    "column_titles", "frozen_params", "kernel_text", "note_texts", "parse_columns", "short_count",
    "trainable_text",
]
