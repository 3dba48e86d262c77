"""Machine-readable renderings of an analysis: a dict/JSON document, CSV and Markdown.

JSON is the contract other tools script against (``model``, ``input_shape``,
``output_shape``, ``total_params``, ``total_macs`` and ``layers`` with ``name``, ``type``,
``input_shape``, ``output_shape``, ``params``, ``macs``); everything else is an extra key, so
adding information never breaks a reader. CSV and Markdown carry the table's columns.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from shapecalc.core.notes import NoteKind
from shapecalc.core.safetext import csv_cell
from shapecalc.output.registry import renderer
from shapecalc.output import (
    header_lines, macs_cell, macs_convention, note_dict, output_text, notes_text, params_line, record_kind,
    record_notes, rf_sizes, rf_text, shape_text, total_macs_text,
)

#: The table's columns, shared by CSV and Markdown so the three stay in step.
COLUMNS = ("index", "name", "kind", "layer", "output_shape", "params", "macs", "rf", "notes")


def _record_dict(record, explain: bool) -> dict[str, Any]:
    notes = record_notes(record)
    out: dict[str, Any] = {
        "name": record.name,
        "type": record.type,
        "input_shape": list(record.input_shape),
        "output_shape": list(record.output_shape),
        "output_shapes": [list(s) for s in record.output_shapes or (record.output_shape,)],
        "params": record.params,
        "macs": record.macs,
        "flops": None if record.macs is None else 2 * record.macs,
        "description": record.description,
        "input_shapes": [list(s) for s in record.input_shapes],
        "rf": rf_sizes(record.rf),
        "notes": [str(note) for note in notes],
        "note_details": [note.to_dict() for note in notes],
        "depth": record.depth,
    }
    if not record.is_block:
        out["kind"] = record_kind(record)
        out["shared"] = record.shared
        out["origin"] = record.origin
    if explain and not record.is_block:
        out["explain"] = record.explain()
    return out


@renderer("dict", summary="the JSON document as Python data (library only)")
def to_dict(analysis, explain: bool = False) -> dict[str, Any]:
    """The whole analysis as plain JSON-able data (lists, ints, strings)."""
    return {
        "model": analysis.model,
        "input_shape": list(analysis.input_shape),
        "output_shape": list(analysis.output_shape),
        "dtype": analysis.dtype,
        "input_shapes": [list(s) for s in analysis.input_shapes or (analysis.input_shape,)],
        "input_dtypes": list(analysis.input_dtypes or ("float32",)),
        "outputs": [{"name": label, "shape": list(shape)} for label, shape in analysis.outputs]
        or [{"name": "output", "shape": list(analysis.output_shape)}],
        "mode": analysis.mode,
        "notes": [str(n) for n in analysis.notes],
        "note_details": [note_dict(n) for n in analysis.notes],
        # Where the sizes fit but one sample in does not give one sample out: the operation,
        # its line and the code fix (null: the batch is kept, or was not checked — the API's
        # analyze() does not check it; show, report and check do).
        "batch_fold": next((n.to_dict() for n in analysis.notes
                            if getattr(n, "kind", None) is NoteKind.BATCH_FOLD), None),
        "total_params": analysis.total_params,
        "trainable_params": analysis.trainable_params,
        "frozen_params": analysis.frozen_params,
        "total_macs": analysis.total_macs,
        "total_flops": analysis.total_flops,
        # Nodes whose MACs are unknown (null in "layers"): the totals are then lower bounds.
        "uncounted": list(analysis.uncounted),
        "param_bytes": analysis.param_bytes,
        "activation_bytes": analysis.activation_bytes,
        "input_bytes": analysis.input_bytes,
        "macs_convention": macs_convention(analysis),
        "layers": [_record_dict(r, explain) for r in analysis.records],
        "blocks": [_record_dict(b, False) for b in analysis.blocks.values()],
    }


@renderer("json", summary="one JSON document", suffixes=("json",), commands=("show",))
def to_json(analysis, indent: int | None = 2, explain: bool = False, checks=None) -> str:
    """:func:`to_dict` as JSON text (UTF-8 kept readable: ``ensure_ascii=False``); with
    ``checks`` (``show --verify``), a ``verify`` list of engine vs torch shapes per node."""
    data = to_dict(analysis, explain=explain)
    if checks is not None:
        data["verify"] = [
            {"name": c.name, "engine": list(c.engine),
             "torch": None if c.torch is None else list(c.torch), "ok": c.ok}
            for c in checks
        ]
    return json.dumps(data, indent=indent, ensure_ascii=False)


def table_rows(analysis, depth: int | None = None, ops: bool = False) -> list[dict[str, Any]]:
    """One dict per table row (blocks and layers in tree order, cut at ``depth``; an imported
    module's functional glue only with ``ops``)."""
    index = {r.name: i for i, r in enumerate(analysis.records)}
    rows = []
    for rec in analysis.rows(depth, ops):
        rows.append({
            "index": "" if rec.is_block else index[rec.name],
            "name": rec.name,
            "kind": "block" if rec.is_block else "layer",
            "layer": rec.description,
            "output_shape": output_text(rec, "x"),
            "params": rec.params,
            "macs": rec.macs,
            "rf": rf_text(rec.rf).replace("×", "x"),
            "notes": notes_text(rec),
        })
    return rows


@renderer("csv", summary="the table as CSV", suffixes=("csv",), commands=("show",))
def to_csv(analysis, depth: int | None = None, ops: bool = False) -> str:
    """The table as CSV with a header row; shapes as ``1x96x54x54`` so spreadsheets keep them."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: csv_cell(value) if isinstance(value, str) else value
                      for key, value in row.items()} for row in table_rows(analysis, depth, ops))
    return buf.getvalue()


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|")


@renderer("markdown", summary="a Markdown table and totals", suffixes=("md", "markdown"),
          commands=("show",))
def to_markdown(analysis, depth: int | None = None, ops: bool = False) -> str:
    """A GitHub-flavoured Markdown table plus the totals, ready to paste into a README."""
    head = ["#", "name", "layer", "output shape", "params", "MACs", "RF", "notes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for row in table_rows(analysis, depth, ops):
        name = row["name"] if row["kind"] == "layer" else f"**{row['name']}**"
        cells = [row["index"], name, row["layer"], row["output_shape"].replace("x", "×"),
                 f"{row['params']:,}", macs_cell(row['macs']), row["rf"].replace("x", "×"),
                 row["notes"]]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    lines.append("")
    lines.extend(f"- {line}" for line in header_lines(analysis) + footer_lines(analysis))
    return "\n".join(lines) + "\n"


def footer_lines(analysis) -> list[str]:
    """Totals in words, shared by the rich table and Markdown."""
    from shapecalc.output import human_bytes, human_count

    at_least = "≥ " if analysis.uncounted else ""
    return [
        params_line(analysis),
        f"Total MACs: {total_macs_text(analysis)}"
        f" · FLOPs: {at_least}{analysis.total_flops:,} ({human_count(analysis.total_flops)})",
        f"Memory ({analysis.dtype}): parameters {human_bytes(analysis.param_bytes)}"
        f" · activations {human_bytes(analysis.activation_bytes)}"
        f" · input {human_bytes(analysis.input_bytes)}",
        macs_convention(analysis),
    ]


__all__ = ["COLUMNS", "footer_lines", "table_rows", "to_csv", "to_dict", "to_json", "to_markdown"]
