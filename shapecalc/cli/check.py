"""``shapecalc check MODEL``: does the model fit this input, and if not, what is the smallest fix?

Exit status is the answer, for scripts and CI: 0 fits, 1 does not fit, 2 a malformed command
line or a model that could not be loaded (unknown name, missing file, syntax error).
``--input`` is repeated for a forward that takes several tensors (as for ``show``).
``--input-range LO..HI`` scans square input sizes instead and says which fit, which keep every
pixel ("exact") and where the others fail; it is for models with one input. The model is resolved (imported, traced) once and
handed to the diagnosis or the scan.
"""

from __future__ import annotations

import json
import re

import click

from shapecalc.core.errors import UsageError
from shapecalc.cli.common import build_options, max_nodes_option, max_run_option
from shapecalc.cli.model_input import input_option, input_text, inputs_as_flag, model_inputs, parse_inputs

_RANGE = re.compile(r"^\s*(\d+)\s*(?:\.\.|-|:)\s*(\d+)\s*$")
MAX_SPAN = 8192


def parse_range(text: str) -> tuple[int, int]:
    """``"32..512"`` → ``(32, 512)``; both ends positive, low ≤ high."""
    match = _RANGE.match(text)
    if not match:
        raise UsageError(f"--input-range: expected LOW..HIGH like 32..512, got {text!r}")
    low, high = int(match.group(1)), int(match.group(2))
    if low < 1 or high < low:
        raise UsageError(f"--input-range: need 1 ≤ LOW ≤ HIGH, got {low}..{high}")
    if high - low > MAX_SPAN:
        raise UsageError(f"--input-range: at most {MAX_SPAN} sizes at once, got {high - low + 1}")
    return low, high


def one_input_for_range(src, given: int) -> None:
    """Refuse ``--input-range`` unless the model takes one input and one ``--input`` at most:
    the scan sets one input's square size, and which of several inputs to scan is no choice
    to make silently."""
    takes = len(src.graph.input_names) if src.graph is not None else 1
    if takes > 1 or given > 1:
        why = (f"{src.name} takes {takes} inputs ({', '.join(src.graph.input_labels or src.graph.input_names)})"
               if takes > 1 else f"{given} --input were given")
        raise UsageError(f"--input-range: scans the square sizes of a model's only input, but {why}; "
                         "check several inputs without --input-range, one --input per input")


@click.command(epilog="\b\nExample: shapecalc check alexnet --input 1x1x64x64")
@click.argument("model")
@input_option()
@max_run_option()
@max_nodes_option()
@build_options()
@click.option("--input-range", "input_range", metavar="LOW..HIGH", default=None,
              help="Scan square input sizes LOW..HIGH: which fit, which are exact (no remainder); "
                   "for a model with one input.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@click.pass_context
def check(ctx: click.Context, model: str, input_shape: tuple[str, ...], input_range: str | None,
          as_json: bool) -> None:
    """Say whether MODEL fits an input, and explain the first layer that does not.

    MODEL is a zoo name, a spec file (.json/.yaml/.toml), path/to/file.py:Net or
    package.module:make_net(num_classes=10). A Python target runs that Python code, as
    `python file.py` would (the check that it names a model is no sandbox); zoo names and
    spec files never run code. A forward that takes
    several tensors gets one --input each, in order (--input 1x3x32x32 --input 1x77:int64).

    Every proposed fix has been checked through the whole model. The input-size search is
    bounded in time and says where it looked when it finds nothing.

    Exit status: 0 fits, 1 does not fit, 2 usage error or the model could not be loaded.
    """
    from shapecalc.models.api import load_model

    parsed = parse_inputs(input_shape)
    span = parse_range(input_range) if input_range is not None else None
    src = load_model(model)
    if span is not None:
        one_input_for_range(src, len(parsed))
        fits = _scan_range(src, parsed[0].shape if parsed else None, span, as_json)
    else:
        fits = _diagnose_inputs(src, parsed, as_json)
    ctx.exit(0 if fits else 1)


def _scan_range(src, shape, span: tuple[int, int], as_json: bool) -> bool:
    """``--input-range``: which square sizes of the only input fit, are exact, drop pixels or
    fail where; True when any size fits."""
    from shapecalc.cli import set_answer
    from shapecalc.diagnose.diagnosis import scan_inputs
    from shapecalc.output.diagnosis import scan_lines

    low, high = span
    scan = scan_inputs(src, src.input_shape(shape, "--input"), low, high)
    set_answer(0 if scan.fits else 1)  # before printing: a closed pipe keeps the verdict
    if as_json:
        click.echo(json.dumps(scan.to_dict(), indent=2))
        return bool(scan.fits)
    for line in scan_lines(scan):
        click.echo(line)
    return bool(scan.fits)


def _diagnose_inputs(src, parsed: list, as_json: bool) -> bool:
    """One set of inputs: the verdict, worded by the diagnosis renderer the notebook and the
    report share; True when the model fits."""
    from shapecalc.cli import set_answer
    from shapecalc.diagnose.diagnosis import diagnose
    from shapecalc.output.diagnosis import diagnosis_lines

    with inputs_as_flag():
        diag = diagnose(src, model_inputs(src, parsed))
    set_answer(0 if diag.fits else 1)  # before printing: a closed pipe keeps the verdict
    if as_json:
        click.echo(json.dumps(diag.to_dict(), indent=2, default=list))
    else:
        for line in diagnosis_lines(diag, inputs_hint=_input_flags):
            click.echo(line)
    return diag.fits


def _input_flags(shapes: list, dtypes: tuple) -> str:
    """The ``--input`` flags that give these inputs (a fix's resized inputs, ready to type)."""
    return " ".join(f"--input {input_text(s, k)}" for s, k in zip(shapes, dtypes))
