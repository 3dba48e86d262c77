"""``shapecalc graph MODEL``: draw a model with Graphviz, tensor shapes on every edge.

DOT text goes to stdout (or a file) and needs nothing installed; SVG, PNG and PDF need
Graphviz's ``dot`` and a file to write to (binary data on a terminal helps nobody). The engine
is pure Python, so drawing never imports torch.
"""

from __future__ import annotations

import click

from ..errors import UsageError
from .common import max_nodes_option, shape_option


@click.command()
@click.argument("model")
@shape_option()
@max_nodes_option()
@click.option("-o", "--output", "output", metavar="FILE", default=None,
              help="Write to FILE (format from its suffix: .dot/.gv/.svg/.png/.pdf). Default: DOT on stdout.")
@click.option("--format", "fmt", type=click.Choice(("dot", "svg", "png", "pdf")), default=None,
              help="Output format (default: from -o's suffix, else dot).")
@click.option("--rankdir", type=click.Choice(("TB", "LR"), case_sensitive=False), default="TB",
              show_default=True, help="Layout direction: top to bottom, or left to right.")
@click.option("--depth", type=click.IntRange(min=0), default=None, metavar="N",
              help="Draw blocks nested deeper than N as single nodes (0: top-level only).")
@click.option("--expand", is_flag=True,
              help="Draw every layer (by default big models are collapsed to ≤80 nodes).")
def graph(model: str, input_shape: str | None, output: str | None, fmt: str | None, rankdir: str,
          depth: int | None, expand: bool) -> int:
    """Draw MODEL: one node per layer with its arguments, output shape and parameters; edges
    carry tensor shapes; blocks are boxes; colours mark the layer kind.

    Examples: `shapecalc graph resnet18 -o resnet18.svg`,
    `shapecalc graph resnet50 --depth 1 --rankdir LR -o r50.png`,
    `shapecalc graph lenet | dot -Tpdf -o lenet.pdf`.
    """
    from ..render.dot import analysis_to_dot, write_graph
    from .show import load_and_analyze

    if depth is not None and expand:
        raise UsageError("--depth and --expand exclude each other: --expand draws every layer")
    if output is None and fmt not in (None, "dot"):
        raise UsageError(f"--format {fmt} writes a binary file; give -o FILE (only dot goes to stdout)")
    _, analysis = load_and_analyze(model, input_shape)
    rankdir = rankdir.upper()
    if output is None:
        click.echo(analysis_to_dot(analysis, rankdir=rankdir, depth=depth, expand=expand), nl=False)
        return 0
    written = write_graph(analysis, output, fmt=fmt, rankdir=rankdir, depth=depth, expand=expand)
    click.echo(f"graph of {analysis.model} written to {written}", err=True)
    return 0
