"""``shapecalc graph MODEL``: draw a model with Graphviz, tensor shapes on every edge.

DOT text goes to stdout (or a file) and needs nothing installed; SVG, PNG and PDF need
Graphviz's ``dot``. Formats come from the one registry (``shapecalc.output.registry``); files are
written atomically by ``shapecalc.core.fileio``. The engine is pure Python, so drawing never imports
torch.
"""

from __future__ import annotations

import sys

import click

from shapecalc.core.errors import UsageError
from shapecalc.output.registry import names
from shapecalc.cli.common import AsciiInt, build_options, max_nodes_option, max_run_option
from shapecalc.cli.graphviz_options import dot_timeout_as_flags, dot_timeout_option
from shapecalc.cli.model_input import input_option, load_and_analyze, params_as_flags


def binary_to_terminal(fmt) -> bool:
    """Whether ``fmt`` is binary and standard output is a terminal (bytes there help nobody)."""
    return fmt.binary and sys.stdout.isatty()


@click.command(epilog="\b\nExample: shapecalc graph resnet18 --depth 1 -o resnet18.svg")
@click.argument("model")
@input_option()
@max_run_option()
@max_nodes_option()
@build_options()
@click.option("-o", "--output", "output", metavar="FILE", default=None,
              help="Write to FILE (format from its suffix: .dot/.gv/.svg/.png/.pdf); '-' writes any "
                   "format to standard output. Default: DOT on stdout.")
@click.option("--format", "fmt", type=click.Choice(names("graph"), case_sensitive=False), default=None,
              help="Output format (default: from -o's suffix, else dot).")
@click.option("--rankdir", type=click.Choice(("TB", "LR"), case_sensitive=False), default="TB",
              show_default=True, help="Layout direction: top to bottom, or left to right.")
@click.option("--depth", type=AsciiInt(0), default=None, metavar="N",
              help="Draw blocks nested deeper than N as single nodes (0: top-level only).")
@click.option("--expand", is_flag=True,
              help="Draw every layer (by default big models are collapsed to ≤80 nodes).")
@dot_timeout_option()
def graph(model: str, input_shape: tuple[str, ...], output: str | None, fmt: str | None, rankdir: str,
          depth: int | None, expand: bool, dot_timeout: float) -> int:
    """Draw MODEL: one node per layer with its arguments, output shape and parameters; edges
    carry tensor shapes; blocks are boxes; colours mark the layer kind. DOT goes to stdout
    unless -o names a file, whose suffix picks the format (.svg, .png, .pdf, .dot).
    """
    from shapecalc.output.registry import for_output, write

    if depth is not None and expand:
        raise UsageError("--depth and --expand exclude each other: --expand draws every layer")
    with params_as_flags({"path": "-o", "format": "--format"}):
        chosen = for_output(output, fmt, "graph", default="dot")
    if (output is None and chosen.binary) or (output == "-" and binary_to_terminal(chosen)):
        raise UsageError(f"--format {chosen.name} writes a binary file; give -o FILE "
                         "(or -o - to pipe it; only dot and svg go to a terminal)")
    _, analysis = load_and_analyze(model, input_shape)
    with params_as_flags({"path": "-o", "format": "--format"}), dot_timeout_as_flags():
        written = write(analysis, chosen, output, rankdir=rankdir.upper(), depth=depth, expand=expand,
                        dot_timeout=dot_timeout)
    if written != "-":
        click.echo(f"graph of {analysis.model} written to {written}", err=True)
    return 0
