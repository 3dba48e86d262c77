"""How analyses and diagnoses present themselves in Python: short ``repr``, IPython's pretty
printer, and the text of a diagnosis (Jupyter's HTML lives in :mod:`.html_table`).

A ``repr`` is one line a reader can take in at a glance (model, input → output, totals); the
table is ``str()``, ``table()`` or the notebook display, so a list of analyses stays readable.
"""

from __future__ import annotations

import shutil
from typing import Callable

from shapecalc.diagnose.fixes import FixKind, fixed_input
from shapecalc.output.registry import DIAGNOSIS, renderer
from shapecalc.output import human_count, shape_text, total_macs_text


@renderer("repr", summary="one line: model, input → output, totals (library only)")
def analysis_repr(analysis) -> str:
    """``<Analysis alexnet: 1×1×224×224 → 1×10, 21 layers, 46,764,746 params (46.76 M), …>``."""
    return (f"<{type(analysis).__name__} {analysis.model}: {shape_text(analysis.input_shape)} → "
            f"{shape_text(analysis.output_shape)}, {len(analysis.records)} layers, "
            f"{analysis.total_params:,} params ({human_count(analysis.total_params)}), "
            f"{total_macs_text(analysis)} MACs>")


def terminal_width() -> int:
    """The width of the terminal Python runs in (80 when there is none, as in a kernel)."""
    return shutil.get_terminal_size((80, 24)).columns


@renderer("repr", summary="one line: model, inputs, verdict, number of fixes", subject=DIAGNOSIS)
def diagnosis_repr(diagnosis) -> str:
    """``<Diagnosis alexnet 1×1×28×28: does not fit at '3' Conv2d(…); 2 fixes>``."""
    where = " + ".join(shape_text(s) for s in getattr(diagnosis, "input_shapes", ()) or (diagnosis.input_shape,))
    if diagnosis.fits:
        return f"<Diagnosis {diagnosis.model} {where}: fits → {shape_text(diagnosis.output_shape)}>"
    at = f" at '{diagnosis.node}' {diagnosis.layer}" if diagnosis.node else ""
    fixes = len(diagnosis.fixes)
    verdict = "does not keep the batch" if getattr(diagnosis, "batch_fold", None) else "does not fit"
    return (f"<Diagnosis {diagnosis.model} {where}: {verdict}{at}; "
            f"{fixes} fix{'es' if fixes != 1 else ''}>")


#: Dropping nodes named in a verdict; more are counted, not listed.
SHOWN_DROPPING = 6


def diagnosis_lines(diagnosis, inputs_hint: Callable[[list, tuple], str] | None = None) -> list[str]:
    """The verdict, worded once for ``shapecalc check``, the notebook and the report: headline,
    where, what, numbered fixes. ``inputs_hint(shapes, dtypes)``, when given, words the inputs
    a fix resizes for a model with several (``check`` writes them as ``--input`` flags)."""
    if diagnosis.fits:
        lines = [f"✓ {diagnosis.summary()}"]
        if diagnosis.dropping:
            shown = ", ".join(f"'{n}'" for n in diagnosis.dropping[:SHOWN_DROPPING])
            extra = len(diagnosis.dropping) - SHOWN_DROPPING
            more = f" and {extra} more" if extra > 0 else ""
            lines.append(f"  note: pixels are dropped at {shown}{more} (input size not exact)")
        return lines
    lines = [diagnosis.headline()]
    if diagnosis.node:  # a forward that raised in its own code has no node to name
        lines.append(f"  at node   '{diagnosis.node}'  {diagnosis.layer or ''}".rstrip())
    if diagnosis.expected:
        lines += [f"  expected  {diagnosis.expected}", f"  got       {diagnosis.got}"]
    lines.append(f"  {diagnosis.problem}")
    for i, fix in enumerate(diagnosis.fixes, 1):
        lines.append(f"  fix {i}: {fix}")
        if inputs_hint is not None and fix.kind is FixKind.INPUT and len(diagnosis.input_shapes) > 1:
            fixed = fixed_input(list(diagnosis.input_shapes), fix)
            lines.append("          " + inputs_hint(fixed, diagnosis.input_dtypes))
    if getattr(diagnosis, "searched", ""):
        lines.append(f"  searched  {diagnosis.searched}")
    return lines


@renderer("text", summary="the verdict as shapecalc check prints it", subject=DIAGNOSIS)
def diagnosis_text(diagnosis) -> str:
    return "\n".join(diagnosis_lines(diagnosis))


@renderer("markdown", summary="the verdict as a Markdown list", subject=DIAGNOSIS)
def diagnosis_markdown(diagnosis) -> str:
    lines = diagnosis_lines(diagnosis)
    body = [f"**{lines[0]}**", ""]
    body += [f"- {line.strip()}" for line in lines[1:]]
    return "\n".join(body) + "\n"


__all__ = ["analysis_repr", "diagnosis_lines", "diagnosis_markdown", "diagnosis_repr", "diagnosis_text",
           "terminal_width"]
