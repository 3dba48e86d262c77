"""``shapecalc show MODEL`` (every layer's shape, parameters, MACs, receptive field) and
``shapecalc models`` (the built-in architectures).

Both run on the pure-Python engine: nothing here imports torch unless ``--verify`` asks for a
real forward. Renderers are imported only for the format asked for, so ``--json`` never loads
rich.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from shapecalc.core.errors import ShapeError
from shapecalc.output.registry import names
from shapecalc.cli.common import AsciiInt, build_options, dtype_option, max_nodes_option, max_run_option
from shapecalc.cli.graphviz_options import dot_timeout_as_flags, dot_timeout_option
from shapecalc.cli.model_input import input_option, load_and_analyze, params_as_flags, too_small_message

#: Output formats of ``--format``: those the registry (``shapecalc.output.registry``) offers to show.
FORMATS = names("show")


def is_terminal() -> bool:
    """Whether stdout is a terminal (colours, terminal width) rather than a pipe or file."""
    return sys.stdout.isatty()


def emit(draw) -> None:
    """Print a rich renderable: in colour on a terminal; as plain, wide, right-trimmed text
    when piped, so that tables are neither squeezed to 80 columns nor full of escape codes."""
    if is_terminal():
        from rich.console import Console

        from shapecalc.core.safetext import unfiltered

        draw(Console(file=unfiltered(sys.stdout), highlight=False))
    else:
        from shapecalc.output.table import capture_text

        click.echo(capture_text(draw), nl=False)


def _verify(src, analysis) -> list:
    from shapecalc.models.torch_models import verify

    return verify(src, analysis.inputs, device="meta", mode=analysis.mode or "eval")


def _write_graph(analysis, path: str, depth: int | None, dot_timeout: float) -> None:
    """``--graph FILE``: the drawing, format from the suffix, written atomically (``-``: stdout)."""
    from shapecalc.output.registry import for_output, write

    with params_as_flags({"path": "--graph", "format": "--graph"}), dot_timeout_as_flags():
        fmt = for_output(path, None, "graph")
        written = write(analysis, fmt, path, depth=depth, dot_timeout=dot_timeout)
    if written != "-":
        click.echo(f"graph written to {written}", err=True)


@click.command(epilog="\b\nExample: shapecalc show resnet18 --depth 1")
@click.argument("model")
@input_option()
@max_run_option()
@click.option("--train-mode", is_flag=True,
              help="Analyse an nn.Module in train mode (training-only branches such as auxiliary "
                   "heads); the default is eval mode, as torchinfo.")
@max_nodes_option()
@build_options()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="Output format.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--explain", is_flag=True, help="Show the arithmetic behind every output size.")
@click.option("--depth", type=AsciiInt(0), default=None, metavar="N",
              help="Collapse blocks nested deeper than N (0: top-level rows only).")
@click.option("--ops", is_flag=True,
              help="Also show the functional glue of an imported module (adds, views, masks) as "
                   "rows; by default it is folded into its module's row, which counts its MACs.")
@dtype_option()
@click.option("--graph", "graph_path", metavar="FILE", default=None,
              help="Also draw the model with graphviz (format from the suffix: .dot/.svg/.png/.pdf).")
@dot_timeout_option()
@click.option("--verify", is_flag=True,
              help="Run the torch module built from the same spec (meta device) and compare every shape.")
@click.option("--columns", "columns_text", metavar="LIST", default=None,
              help="Table columns, in order, comma-separated: input_size, output_size, num_params, "
                   "params_percent, kernel_size, mult_adds, trainable, receptive_field, notes "
                   "(short names: input, output, params, percent, kernel, macs, rf).")
@click.option("--width", type=AsciiInt(20), default=None, metavar="N",
              help="Fit the table to N columns (default: the terminal's width; piped output is "
                   "the full table, whatever the terminal).")
def show(model: str, input_shape: tuple[str, ...], train_mode: bool, fmt: str, as_json: bool,
         explain: bool, depth: int | None, ops: bool, dtype: str, graph_path: str | None, verify: bool,
         columns_text: str | None, width: int | None, dot_timeout: float) -> int:
    """Every layer of MODEL: output shape, parameters, MACs, receptive field and notes.

    MODEL is a built-in name (see `shapecalc models`), a spec file or path/to/file.py:Net.
    """
    columns = None
    if columns_text is not None:  # checked before the model is loaded: a typo fails fast
        from shapecalc.output.columns import parse_columns

        columns = parse_columns(columns_text)
    src, analysis = load_and_analyze(model, input_shape, dtype, "train" if train_mode else "eval")
    if as_json:
        fmt = "json"
    if graph_path is not None:  # first: a bad path fails before anything is printed
        _write_graph(analysis, graph_path, depth, dot_timeout)
    checks = _verify(src, analysis) if verify else None
    if fmt == "table" and is_terminal():
        from shapecalc.output.table import print_analysis

        emit(lambda console: print_analysis(analysis, console, depth=depth, explain=explain,
                                            checks=checks, columns=columns,
                                            width=width or console.width, ops=ops))
    else:  # every other format, and the table when piped: one function in the registry
        from shapecalc.output.registry import get, write

        write(analysis, get(fmt, "show"), "-", param="output", depth=depth, explain=explain,
              checks=checks, columns=columns, width=width, ops=ops)
    if checks is not None:
        wrong = [c for c in checks if not c.ok]
        if wrong:
            first = wrong[0]
            raise ShapeError(
                f"torch disagrees with the engine at {len(wrong)} node(s); first at "
                f"'{first.name or 'output'}': engine {'×'.join(map(str, first.engine))}, "
                f"torch {'×'.join(map(str, first.torch))}"
            )
    return 0


def zoo_rows() -> list[dict[str, Any]]:
    """Every registered model with its default input and the engine's totals for it."""
    from shapecalc.models.api import analyze
    from shapecalc.core.errors import ShapecalcError
    from shapecalc.models.zoo import ZOO

    rows = []
    for name, entry in ZOO.items():
        row: dict[str, Any] = {
            "name": name, "default_input": list(entry.default_input),
            "description": entry.description, "source": entry.source,
        }
        try:
            result = analyze(name)
            row.update(params=result.total_params, macs=result.total_macs,
                       output_shape=list(result.output_shape))
        except ShapecalcError as err:  # a broken entry must not hide the others
            row.update(params=None, macs=None, output_shape=None, error=str(err))
        rows.append(row)
    return rows


@click.command(epilog="\b\nExample: shapecalc models --json")
@click.option("--json", "as_json", is_flag=True, help="One JSON list instead of a table.")
def models(as_json: bool) -> int:
    """The built-in models: name, default input, parameters, MACs and what each one is."""
    rows = zoo_rows()
    if as_json:
        import json

        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        _print_models(rows)
    broken = [r for r in rows if r.get("error")]
    if broken:
        raise ShapeError(f"zoo model {broken[0]['name']!r} does not analyse: {broken[0]['error']}")
    return 0


def _print_models(rows: list[dict[str, Any]]) -> None:
    from rich import box
    from rich.table import Table

    from shapecalc.output import human_count

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for title, justify in (("model", "left"), ("default input", "left"), ("params", "right"),
                           ("MACs", "right"), ("description", "left")):
        table.add_column(title, justify=justify, no_wrap=title != "description")
    for r in rows:
        table.add_row(
            r["name"], "×".join(map(str, r["default_input"])),
            "error" if r["params"] is None else human_count(r["params"]),
            "error" if r["macs"] is None else human_count(r["macs"]),
            r.get("error") or r["description"],
        )
    emit(lambda console: console.print(table))


__all__ = ["load_and_analyze", "models", "show", "too_small_message", "zoo_rows"]
