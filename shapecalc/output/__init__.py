"""Turning an :class:`~shapecalc.core.graph.Analysis` into something people read.

``table`` (rich tables, the default of ``shapecalc show``), ``formats`` (JSON, CSV, Markdown)
and ``dot`` (graphviz) are separate modules loaded on demand, so ``shapecalc show --json``
never pays for importing rich. This module holds only the small, dependency-free text
helpers that every renderer shares, so that a number reads the same in every format.
"""

from __future__ import annotations

from typing import Iterable

from shapecalc.core.layers.base import LayerKind
from shapecalc.core.notes import Note, NoteKind
from shapecalc.core.arithmetic import FieldRule

#: Stated once in every table footer and JSON document, so nobody has to guess.
#: The rule itself lives in the layers (``layers/``); the README's "The MACs convention"
#: compares it with torchinfo's and fvcore's, measured.
MACS_CONVENTION = (
    "MACs = multiply-accumulates: every weight and bias once per position it is applied at, "
    "per sample (Linear on N×L×F: N·L positions; RNNs: every step), plus attention's QKᵀ and "
    "A·V; element-wise ops and lookups 0; norm layers: affine parameters once per sample; "
    "ConvTranspose per input position; FLOPs = 2·MACs"
)


#: Said under a table when rows were measured: their MACs are torch's, not the rule above.
_MEASURED_CONVENTION = ("; rows marked measured: torch's FLOP counter ÷ 2 (matrix products, "
                        "convolutions and attention only: no bias adds, norms or element-wise ops)")
_UNCOUNTED_CONVENTION = "; ? = not counted (no rule, and torch has no formula for what it runs)"


def macs_convention(analysis) -> str:
    """The convention line for this analysis: the rule, plus how its measured rows were counted
    and what ``?`` means, where it has such rows (so the line is true for the model above it)."""
    line = MACS_CONVENTION
    records = getattr(analysis, "records", ()) or ()
    if any(r.measured and r.macs for r in records):
        line += _MEASURED_CONVENTION
    if getattr(analysis, "uncounted", None):
        line += _UNCOUNTED_CONVENTION
    return line


def macs_cell(macs: int | None, human: bool = False) -> str:
    """A row's MACs: ``1,234`` (or ``1.23 k``), ``?`` when unknown."""
    if macs is None:
        return "?"
    return human_count(macs) if human else f"{macs:,}"


def uncounted_text(analysis, limit: int = 3) -> str:
    """`` (2 nodes not counted: a, b)`` after a lower-bound total; empty when all are counted."""
    names = list(getattr(analysis, "uncounted", None) or ())
    if not names:
        return ""
    shown = ", ".join(names[:limit]) + (", …" if len(names) > limit else "")
    return f" ({len(names)} node{'s' if len(names) != 1 else ''} not counted: {shown})"


def total_macs_text(analysis, human: bool = True) -> str:
    """``1,234 (1.23 k)``, or ``≥ 1,234 (1.23 k) (2 nodes not counted: a, b)``."""
    total = analysis.total_macs
    text = f"{total:,} ({human_count(total)})" if human else human_count(total)
    return ("≥ " + text + uncounted_text(analysis)) if getattr(analysis, "uncounted", None) else text


def output_text(record, sep: str = "×") -> str:
    """A row's output: ``1×64×28×28``, or ``[1×32×56×56, 1×64×28×28]`` for a block that
    returns several values."""
    several = getattr(record, "output_shapes", ())
    if len(several) > 1:
        return "[" + ", ".join(shape_text(s, sep) for s in several) + "]"
    return shape_text(record.output_shape, sep)


def shape_text(shape: Iterable[int] | None, sep: str = "×") -> str:
    """``(1, 96, 54, 54)`` → ``1×96×54×54`` (``sep="x"`` for ASCII formats such as CSV)."""
    if shape is None:
        return "?"
    return sep.join(str(d) for d in shape)


#: Beyond this an integer is shown in scientific notation, computed exactly (``Decimal``):
#: ``float()`` of a larger int may overflow, and its decimal text may exceed Python's
#: 4,300-digit limit. Below it the float path is exact and the text is what it always was.
_EXACT_FLOAT = 2**53


def _as_int(n: int | float) -> int | None:
    """``n`` as an exact int (numpy integers included), or ``None`` for a float."""
    if isinstance(n, float) or not hasattr(n, "__index__"):
        return None
    return n.__index__()


def _scientific(n: int, factor: int = 1, unit: str = "") -> str:
    from decimal import Decimal

    return f"{Decimal(n) / Decimal(factor):.2E}{unit}"


def human_count(n: int | float) -> str:
    """``46764746`` → ``46.76 M``: decimal prefixes, as papers quote parameters and MACs."""
    exact = _as_int(n)
    if exact is not None and abs(exact) >= _EXACT_FLOAT:
        return _scientific(exact)
    n = float(n)
    for factor, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {unit}"
    return f"{n:g}"


def human_bytes(n: int | float) -> str:
    """``187058984`` → ``178.39 MiB``: binary units, because memory is allocated in them."""
    exact = _as_int(n)
    if exact is not None and abs(exact) >= _EXACT_FLOAT:
        return _scientific(exact, 1 << 40, " TiB")
    n = float(n)
    for factor, unit in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {unit}"
    return f"{int(n)} B" if n == n and abs(n) != float("inf") else f"{n} B"


def rf_sizes(rf) -> list[int] | str | None:
    """Receptive-field sizes per axis (the most pixels any output reads), ``None`` once every
    output sees the whole input, ``"unknown"`` after a layer with no rule for it."""
    if rf is None:
        return None
    if isinstance(rf, FieldRule):
        return "unknown"
    return [a.size for a in rf]


def rf_text(rf) -> str:
    """``11`` for a square field, ``11×7`` per axis otherwise, ``global`` after Flatten/Linear,
    ``?`` where a layer on the way has no rule for it."""
    sizes = rf_sizes(rf)
    if sizes is None:
        return "global"
    if isinstance(sizes, str):
        return "?"
    if not sizes:
        return "-"
    if all(s == sizes[0] for s in sizes):
        return str(sizes[0])
    return "×".join(str(s) for s in sizes)


def record_notes(record) -> list[Note]:
    """The engine's notes plus what the record's flags mean for a reader, as typed notes.

    Renderers turn them into words with ``str(note)`` (or ``note.to_dict()`` for JSON).
    """
    notes = list(record.notes)
    if getattr(record, "shared", False):
        notes.append(Note.of(NoteKind.SHARED))
    if getattr(record, "measured", False):
        notes.append(Note.of(NoteKind.MEASURED))
    return notes


def mode_text(analysis) -> str:
    """``eval mode`` / ``train mode`` for an nn.Module (empty for a spec, which has no mode)."""
    mode = getattr(analysis, "mode", None)
    return f"{mode} mode" if mode else ""


def input_parts(analysis) -> list[str]:
    """Each input as the forward names it, with its shape and (if not float32) element type:
    ``["img 1×3×224×224", "tokens 1×77 int64"]``."""
    dtypes = tuple(getattr(analysis, "input_dtypes", ()) or ())
    shapes = tuple(getattr(analysis, "input_shapes", ()) or ()) or (analysis.input_shape,)
    graph = getattr(analysis, "graph", None)
    names = (graph.input_labels or graph.input_names) if graph is not None else ()
    parts = []
    for i, shape in enumerate(shapes):
        label = names[i] if i < len(names) else f"input_{i}"
        kind = dtypes[i] if i < len(dtypes) else "float32"
        parts.append(f"{label} {shape_text(shape)}" + ("" if kind == "float32" else f" {kind}"))
    return parts


def several_inputs(analysis) -> bool:
    """Inputs worth naming one by one: more than one, or one that is not float32."""
    dtypes = tuple(getattr(analysis, "input_dtypes", ()) or ())
    return len(tuple(getattr(analysis, "input_shapes", ()) or ())) > 1 or any(
        d != "float32" for d in dtypes)


def header_lines(analysis, with_mode: bool = True) -> list[str]:
    """What the title line does not say: several inputs/outputs, the mode, model-wide notes."""
    lines = []
    if several_inputs(analysis):
        lines.append("inputs: " + ", ".join(input_parts(analysis)))
    outputs = list(getattr(analysis, "outputs", []) or [])
    if len(outputs) > 1:
        lines.append("outputs: " + ", ".join(f"{label} {shape_text(s)}" for label, s in outputs))
    mode = getattr(analysis, "mode", None)
    if mode is not None and with_mode:
        lines.append(f"mode: {mode}" + (" (as torchinfo; --train-mode for training-only branches)"
                                        if mode == "eval" else " (training-only branches included)"))
    lines.extend(f"note: {n}" for n in getattr(analysis, "notes", []) or [])
    return lines


def params_line(analysis) -> str:
    """``Total params: … · trainable … · frozen …``, shared by every footer."""
    total = analysis.total_params
    frozen = getattr(analysis, "frozen_params", 0)
    line = f"Total params: {total:,} ({human_count(total)})"
    if getattr(analysis, "mode", None) is None and not frozen:
        return line  # a spec: every parameter is trainable, nothing to add
    return f"{line} · trainable {total - frozen:,} · frozen {frozen:,}"


def note_dict(note) -> dict:
    """A note in JSON: typed notes carry their kind and numbers, plain strings only text."""
    if hasattr(note, "to_dict"):
        return note.to_dict()
    return {"kind": "text", "text": str(note)}


#: A block's row kind, beside the layers' :class:`~shapecalc.core.layers.LayerKind`.
BLOCK_KIND = "block"


def record_kind(record) -> str:
    """A row's kind, as every renderer colours it: ``block``, the layer's ``kind``, or ``other``."""
    if getattr(record, "is_block", False):
        return BLOCK_KIND
    return record.layer.kind if record.layer is not None else LayerKind.OTHER


#: Characters that would vanish or break a one-line label: C0 and C1 controls (line breaks
#: included), lone surrogates (not encodable in UTF-8) and U+FFFE/U+FFFF. Compiled on first use.
_UNPRINTABLE = "[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]"


def _stand_in(match) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ … ␟, Unicode's control pictures
    if code == 0x7F:
        return "\u2421"
    return f"[U+{code:04X}]"


def visible_text(text: object) -> str:
    """``text`` with every unprintable character replaced by a visible stand-in (``\n`` → ``␊``,
    a lone surrogate → ``[U+D800]``): a name reads the same in the graph and in HTML."""
    import re

    return re.sub(_UNPRINTABLE, _stand_in, str(text))


def notes_text(record, sep: str = "; ") -> str:
    """A record's notes as one line of text (table cells, CSV, Markdown)."""
    return sep.join(str(note) for note in record_notes(record))


__all__ = [
    "BLOCK_KIND", "MACS_CONVENTION", "header_lines", "macs_cell", "macs_convention", "output_text", "total_macs_text",
    "uncounted_text", "mode_text", "human_bytes", "human_count", "note_dict", "notes_text",
    "params_line", "record_kind", "record_notes", "rf_sizes", "rf_text", "shape_text", "visible_text",
]
