"""``shapecalc report MODEL -o model.html``: one self-contained, interactive HTML page.

The page holds the header and totals, a filterable table, the Graphviz drawing and a details
panel (arithmetic, notes, receptive field to scale); it loads nothing from the network. MODEL is
resolved exactly as ``show`` resolves it; the file is written atomically.
"""

from __future__ import annotations

import click

from shapecalc.core.errors import ShapeError, UsageError
from shapecalc.cli.common import AsciiInt, build_options, dtype_option, max_run_option
from shapecalc.cli.model_input import input_option
from shapecalc.cli.graphviz_options import dot_timeout_as_flags, dot_timeout_option


@click.command(epilog="\b\nExample: shapecalc report alexnet -o alexnet.html")
@click.argument("model")
@input_option()
@max_run_option()
@build_options()
@dtype_option()
@click.option("-o", "--output", "output", metavar="FILE", required=True,
              help="Write the page to FILE (.html); '-' writes it to standard output.")
@click.option("--rankdir", type=click.Choice(("TB", "LR"), case_sensitive=False), default="TB",
              show_default=True, help="Graph layout: top to bottom, or left to right.")
@click.option("--depth", type=AsciiInt(0), default=None, metavar="N",
              help="Draw blocks nested deeper than N as single graph nodes (the table keeps every row).")
@click.option("--expand", is_flag=True, help="Draw every layer in the graph, however big the model.")
@click.option("--no-graph", "no_graph", is_flag=True,
              help="Leave the graph out (needs no Graphviz).")
@click.option("--ops", is_flag=True,
              help="Also give the functional glue of an imported module (adds, views, masks) "
                   "table rows; by default its module's row counts it.")
@dot_timeout_option()
def report(model: str, input_shape: tuple[str, ...], dtype: str, output: str, rankdir: str,
           depth: int | None, expand: bool, no_graph: bool, ops: bool, dot_timeout: float) -> int:
    """Write an interactive HTML report of MODEL: click a row or a graph node to see that
    layer's arithmetic, its notes and its receptive field drawn on the input grid.

    MODEL is a built-in name, a spec file or path/to/file.py:Net (as for `show`).
    """
    from shapecalc.cli.model_input import analyze_inputs, model_inputs, note_fold, params_as_flags, parse_inputs
    from shapecalc.models.api import load_model
    from shapecalc.output.dot import NO_DOT, GraphvizNotFound
    from shapecalc.output.registry import for_output, write

    if depth is not None and expand:
        raise UsageError("--depth and --expand exclude each other: --expand draws every layer")
    with params_as_flags({"path": "-o", "format": "-o"}):
        chosen = for_output(output, None, "report", default="report")
    parsed = parse_inputs(input_shape)
    src = load_model(model)
    inputs = model_inputs(src, parsed)
    try:
        analysis = analyze_inputs(src, inputs, dtype)
    except ShapeError as err:
        _report_the_verdict(src, inputs, output, err)
    diagnosis = _diagnose(src, inputs, analysis)
    note_fold(analysis, diagnosis.batch_fold)  # the header says it too, as show's does
    try:
        with params_as_flags({"path": "-o"}), dot_timeout_as_flags(
                "--depth N collapses nested blocks; --no-graph leaves the graph out"):
            written = write(analysis, chosen, output, rankdir=rankdir.upper(), depth=depth,
                            expand=expand, graph=not no_graph, dot_timeout=dot_timeout, ops=ops,
                            diagnosis=diagnosis)
    except GraphvizNotFound:
        raise GraphvizNotFound(f"the report's graph needs {NO_DOT}, or pass --no-graph") from None
    if written != "-":
        click.echo(f"report of {analysis.model} written to {written}", err=True)
    return 0


def _diagnose(src, inputs, analysis=None):
    """The verdict on these inputs, worded by the diagnosis renderer ``check`` prints; with the
    page's own ``analysis`` (a model that fits) it only asks whether the batch is kept."""
    from shapecalc.cli.model_input import inputs_as_flag
    from shapecalc.diagnose.diagnosis import diagnose

    with inputs_as_flag():
        return diagnose(src, inputs, analysis=analysis)


def _report_the_verdict(src, inputs, output: str, err: ShapeError) -> None:
    """A model that does not fit its input has no table to draw: the page gives the verdict
    and the verified fixes instead, and the command still fails with the engine's one line,
    which says where the verdict went."""
    from shapecalc.cli.model_input import params_as_flags
    from shapecalc.output.registry import DIAGNOSIS, all_renderers, write

    diagnosis = _diagnose(src, inputs)
    if diagnosis.fits:  # no verdict to give beside the engine's refusal
        raise err
    with params_as_flags({"path": "-o"}):
        written = write(diagnosis, all_renderers(DIAGNOSIS)["report"], output)
    fixes = len(diagnosis.fixes)
    where = "on standard output" if written == "-" else f"in {written}"
    raise ShapeError(f"{err}; the report {where} gives the verdict and {fixes} verified "
                     f"fix{'es' if fixes != 1 else ''}") from None
