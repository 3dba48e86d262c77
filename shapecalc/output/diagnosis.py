"""The one diagnosis renderer: how a verdict reads wherever it is shown.

``shapecalc check`` prints :func:`diagnosis_lines` and :func:`scan_lines`; the notebook shows
the same lines (``str(diagnosis)``, ``str(scan)``, IPython's pretty printer, Markdown) and the
same fields as HTML (:func:`diagnosis_html`); ``shapecalc report`` puts them in its page
(:func:`report_section`). Each is worded here once, so the outputs cannot drift apart.
"""

from __future__ import annotations

from typing import Callable

from shapecalc.diagnose.fixes import FixKind, fixed_input
from shapecalc.diagnose.input_scan import compact, runs
from shapecalc.output import shape_text
from shapecalc.output.html_table import STYLE, escape
from shapecalc.output.registry import DIAGNOSIS, SCAN, renderer

#: Dropping nodes named in a verdict; more are counted, not listed.
SHOWN_DROPPING = 6
#: Runs of pixel-dropping sizes a scan lists; beyond that it counts them.
SHOWN_DROP_RUNS = 6


@renderer("repr", summary="one line: model, inputs, verdict, number of fixes", subject=DIAGNOSIS)
def diagnosis_repr(diagnosis) -> str:
    """``<Diagnosis alexnet 1×1×28×28: does not fit at '3' Conv2d(…); 2 fixes>``."""
    where = " + ".join(shape_text(s) for s in getattr(diagnosis, "input_shapes", ()) or (diagnosis.input_shape,))
    if diagnosis.fits:
        return f"<Diagnosis {diagnosis.model} {where}: fits → {shape_text(diagnosis.output_shape)}>"
    at = f" at '{diagnosis.node}' {diagnosis.layer}" if diagnosis.node else ""
    fixes = len(diagnosis.fixes)
    return (f"<Diagnosis {diagnosis.model} {where}: {_verdict(diagnosis)}{at}; "
            f"{fixes} fix{'es' if fixes != 1 else ''}>")


def _verdict(diagnosis) -> str:
    return "does not keep the batch" if getattr(diagnosis, "batch_fold", None) else "does not fit"


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


@renderer("html", summary="the verdict, the failing node and the fixes as HTML, Jupyter's display",
          subject=DIAGNOSIS)
def diagnosis_html(diagnosis) -> str:
    """A :class:`~shapecalc.diagnose.diagnosis.Diagnosis` as a short verdict, the failing node and fixes."""
    return (f'<div class="shapecalc-table shapecalc-diagnosis">{STYLE}\n'
            + _verdict_table(diagnosis) + _fixes_html(diagnosis) + "</div>")


def _verdict_table(diagnosis) -> str:
    mark = "✓" if diagnosis.fits else "✗"
    head = escape(diagnosis_lines(diagnosis)[0].removeprefix(mark).strip())
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
                   for k, v in diagnosis_fields(diagnosis))
    return f"<table><caption>{mark} {head}</caption><tbody>{rows}</tbody></table>"


def _fixes_html(diagnosis) -> str:
    fixes = "".join(f"<li><code>{escape(f)}</code></li>" for f in diagnosis.fixes)
    return f"<p>Fixes, each checked by re-running the engine:</p><ol>{fixes}</ol>" if fixes else ""


def diagnosis_fields(diagnosis) -> list[tuple[str, str]]:
    """(label, text) pairs shown under a diagnosis' headline, in reading order."""
    inputs = diagnosis.inputs_text()  # "input 1×3×224×224" or "inputs left …, right …"
    fields = [("model", diagnosis.model), tuple(inputs.split(" ", 1))]
    if diagnosis.fits:
        fields.append(("output", shape_text(diagnosis.output_shape)))
        if diagnosis.dropping:
            fields.append(("drops pixels at", ", ".join(diagnosis.dropping)))
        return fields
    if diagnosis.node:
        fields.append(("at node", f"'{diagnosis.node}'  {diagnosis.layer or ''}".rstrip()))
    if diagnosis.expected:
        fields += [("expected", diagnosis.expected), ("got", diagnosis.got)]
    fields.append(("problem", diagnosis.problem))
    if getattr(diagnosis, "searched", ""):
        fields.append(("searched", diagnosis.searched))
    return fields


def report_section(diagnosis) -> str:
    """The report's verdict (``<section class="sc-diagnosis">``): for a model that fits one line,
    "✓ … fits …" (and the pixel note); for one that does not fit or does not keep the batch the
    verdict, where and why, and the fixes, each verified through the whole model."""
    lines = diagnosis_lines(diagnosis)
    state = "sc-fits" if diagnosis.fits else "sc-fails"
    if diagnosis.fits:
        notes = "".join(f"<li>{escape(line.strip())}</li>" for line in lines[1:])
        body = f'<p class="sc-verdict">{escape(lines[0])}</p>' + (f"<ul>{notes}</ul>" if notes else "")
    else:
        body = _verdict_table(diagnosis) + _fixes_html(diagnosis)
    return f'<section class="sc-diagnosis {state}"><h2>Diagnosis</h2>{body}</section>'


def scan_lines(scan) -> list[str]:
    """``check --input-range``: which square sizes fit, which are exact, which drop pixels,
    where the others fail or fold the batch, and where a scan out of time stopped."""
    head = "×".join(str(v) for v in scan.template[:2]) + "×" + "×".join("N" for _ in scan.template[2:])
    lines = [f"{scan.model}: input {head}, N = {scan.low}..{scan.high}",
             f"  fits       {compact(scan.fits)}  ({len(scan.fits)} sizes)",
             f"  exact      {compact(scan.exact)}  (no remainder at any layer)"]
    shown = (compact(scan.drops) if len(runs(scan.drops)) <= SHOWN_DROP_RUNS
             else f"the other {len(scan.drops)} fitting sizes")
    lines.append(f"  drops px   {shown}")
    lines += [f"  fails at '{node}'  {compact(sizes)}" for node, sizes in scan.fails.items()]
    lines += [f"  '{node}' does not keep the batch at  {compact(sizes)}" for node, sizes in scan.folds.items()]
    if scan.stopped_at is not None:
        lines.append(f"  stopped    at N = {scan.stopped_at} after {scan.budget_seconds:g} s; "
                     f"sizes {scan.stopped_at}..{scan.high} were not scanned (give a narrower range)")
    return lines


@renderer("text", summary="which input sizes fit, as shapecalc check --input-range prints it", subject=SCAN)
def scan_text(scan) -> str:
    return "\n".join(scan_lines(scan))


__all__ = ["SHOWN_DROPPING", "diagnosis_fields", "diagnosis_html", "diagnosis_lines", "diagnosis_markdown",
           "diagnosis_repr", "diagnosis_text", "report_section", "scan_lines", "scan_text"]
