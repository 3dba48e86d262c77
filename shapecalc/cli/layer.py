"""``shapecalc layer``: one convolution or pooling layer, worked by hand.

The command builds the real layer object (``Conv2d``, ``MaxPool3d``, ``ConvTranspose1d`` … from
``shapecalc.core.layers``) out of its options and asks it everything it prints: the output size,
the arithmetic with the user's numbers substituted, the rows no window reads, the largest
padding torch allows and, for ``--target``, the paddings that reach a size. So the CLI says
exactly what ``show`` and ``check`` say about the same layer, and what torch does; this module
only parses and computes, and :mod:`.layer_report` words the answer. Plain text when piped; rich colours only on a terminal.

A single size (``224``) reads as a square image, the case people ask about: the layer is the
2-D one (``nn.Conv2d``) on ``224x224`` and one number is printed for both axes.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from shapecalc.core.errors import ArgumentError, ConfigError, FieldError, ShapecalcError, ShapeError, UsageError
from shapecalc.cli.common import broadcast_axes, parse_ints
from shapecalc.cli.layer_report import report_lines, to_json

OPS = ("conv", "conv-transpose", "maxpool", "avgpool")
MODULES = {"conv": "Conv", "conv-transpose": "ConvTranspose", "maxpool": "MaxPool", "avgpool": "AvgPool"}
AXES = {1: ("",), 2: ("H", "W"), 3: ("D", "H", "W")}


class Query:
    """The parsed command line: what to build, on which input, and what to ask."""

    def __init__(self, op: str, sizes: tuple[int, ...], kernel: tuple[int, ...],
                 stride: tuple[int, ...] | None, dilation: tuple[int, ...] | None,
                 totals: tuple[int, ...] | None, output_padding: tuple[int, ...] | None,
                 ceil_mode: bool, same: bool, targets: tuple[int, ...] | None, pad_flag: str):
        self.op, self.sizes, self.kernel, self.stride, self.dilation = op, sizes, kernel, stride, dilation
        self.totals, self.output_padding, self.ceil_mode, self.same = totals, output_padding, ceil_mode, same
        self.targets, self.pad_flag = targets, pad_flag

    @property
    def shown(self) -> int:
        """Axes reported: one for a single size (a square), else one per axis."""
        return len(self.sizes)

    @property
    def layer_ndim(self) -> int:
        return 2 if len(self.sizes) == 1 else len(self.sizes)

    @property
    def spatial(self) -> tuple[int, ...]:
        return self.sizes * 2 if len(self.sizes) == 1 else self.sizes

    @property
    def module(self) -> str:
        return f"nn.{MODULES[self.op]}{self.layer_ndim}d"


class Axis:
    """One reported axis: what the layer holds and what it answered."""

    def __init__(self, name: str, n: int, window: Any, output: int, explain: list[str],
                 dropped: int, dropped_explain: str | None, solutions: range | None):
        self.name, self.n, self.window, self.output = name, n, window, output
        self.explain, self.dropped, self.dropped_explain = explain, dropped, dropped_explain
        self.solutions = solutions


def _layer_class(op: str, ndim: int) -> type:
    # Only the module the op needs (the layers package loads the rest on first use): `shapecalc
    # layer` is a quick command, and each layer module's dataclasses cost import time.
    import importlib

    name = "conv" if op.startswith("conv") else "pool"
    module = importlib.import_module(f"shapecalc.core.layers.{name}")
    return getattr(module, f"{MODULES[op]}{ndim}d")


def build(q: Query, totals: tuple[int, ...] | None) -> Any:
    """The layer the options describe, with TOTAL padding ``totals`` per axis (or 'same')."""
    cls = _layer_class(q.op, q.layer_ndim)
    kwargs: dict[str, Any] = {"kernel_size": q.kernel, "stride": q.stride}
    if q.op in ("conv", "conv-transpose"):
        kwargs.update(in_channels=1, out_channels=1, stride=q.stride or 1)
    if q.dilation is not None:
        kwargs["dilation"] = q.dilation
    if q.output_padding is not None:
        kwargs["output_padding"] = q.output_padding
    if q.ceil_mode:
        kwargs["ceil_mode"] = True
    if q.same:
        kwargs["padding"] = "same"
    try:
        layer = cls(**kwargs)
        return layer if q.same else layer.with_total_padding(totals or 0)
    except ConfigError as err:
        raise _for_flags(q, err, totals) from None


def _for_flags(q: Query, err: ConfigError, totals: tuple[int, ...] | None) -> ShapecalcError:
    """The layer's refusal, reworded to name the option the user typed."""
    numbers = err.numbers
    if q.same:
        strides = q.stride or (1,)
        stride = str(strides[0]) if len(set(strides)) == 1 else "x".join(map(str, strides))
        return UsageError(f"--same: PyTorch's padding='same' needs stride 1, got --s {stride}; "
                          "use --target N to solve the padding for the output size you want")
    if "limit" in numbers and totals is not None:
        axis = AXES[q.layer_ndim].index(err.axis) if err.axis in AXES[q.layer_ndim] else 0
        total = totals[axis]
        return ConfigError(
            f"{q.pad_flag}: padding {numbers['padding']} per side (p = {total} total) is more than "
            f"half the kernel {numbers['kernel']}: torch's {q.module} allows at most "
            f"{numbers['limit']} per side",
            axis=err.axis if q.shown > 1 else None, numbers=numbers,
        )
    if "output_padding" in numbers:
        return ConfigError(f"--output-padding: {err.message}", numbers=numbers)
    if isinstance(err, FieldError) and err.field in FIELD_FLAGS:  # past a field's maximum
        flag = FIELD_FLAGS[err.field] or ("--target" if q.targets is not None else q.pad_flag)
        return UsageError(f"{flag}: {err.field.replace('_', ' ')} {err.detail}")
    return _located(q, err)


#: The layer's fields → the options that set them (``None``: the padding option in use).
FIELD_FLAGS = {"kernel_size": "--k/--kernel", "stride": "--s/--stride", "dilation": "--d/--dilation",
               "padding": None, "output_padding": "--output-padding"}


def _located(q: Query, err: ShapeError | ConfigError) -> ShapeError | ConfigError:
    """The error under the torch name of the layer; a square query names no axis."""
    return err.replace(layer=q.module[3:], axis=err.axis if q.shown > 1 else None)


def _options(size: str, kernel: str | None, stride: str | None, p: str | None, padding: str | None,
             dilation: str | None, op: str, output_padding: str | None, ceil_mode: bool,
             same: bool, target: str | None) -> Query:
    """Parse and cross-check the command line (UsageError on misuse)."""
    if kernel is None:
        raise UsageError("--k/--kernel: the kernel size is required (like --k 3 or --k 3x5)")
    raw = {
        "SIZE": parse_ints(size, "SIZE"),
        "--k": parse_ints(kernel, "--k/--kernel"),
        "--s": parse_ints(stride, "--s/--stride") if stride is not None else None,
        "--d": parse_ints(dilation, "--d/--dilation") if dilation is not None else None,
        "--p": parse_ints(p, "--p", allow_zero=True) if p is not None else None,
        "--padding": parse_ints(padding, "--padding", allow_zero=True) if padding is not None else None,
        "--output-padding": (parse_ints(output_padding, "--output-padding", allow_zero=True)
                             if output_padding is not None else None),
        "--target": parse_ints(target, "--target") if target is not None else None,
    }
    ndim = max(len(v) for v in raw.values() if v is not None)
    if ndim > 3:
        raise UsageError(f"SIZE/--k: at most 3 spatial axes (like 16x224x224), got {ndim}")
    # A single value everywhere is a square: the 2-D layer, every axis the same.
    axes = 2 if ndim == 1 else ndim
    vals = {key: broadcast_axes(v, axes, key) if v is not None else None for key, v in raw.items()}

    if p is not None and padding is not None:
        raise UsageError("--p and --padding: give one (--p is the total of both sides, --padding "
                         "is per side as in torch: --padding 1 is --p 2)")
    if same and (p is not None or padding is not None or target is not None):
        raise UsageError("--same: it chooses the padding itself; drop --p/--padding/--target")
    if target is not None and (p is not None or padding is not None):
        raise UsageError("--target: it solves the padding; drop --p/--padding")
    if ceil_mode and op not in ("maxpool", "avgpool"):
        raise UsageError("--ceil-mode: only for --op maxpool or avgpool")
    if output_padding is not None and op != "conv-transpose":
        raise UsageError("--output-padding: only for --op conv-transpose")
    if dilation is not None and op == "avgpool":
        if max(vals["--d"]) != 1:
            raise UsageError("--d/--dilation: torch's average pooling has no dilation")
        vals["--d"] = None
    if same and op != "conv":
        raise UsageError("--same: PyTorch's padding='same' exists only for --op conv")

    from shapecalc.core.arithmetic.window import total_padding

    totals = None if same else (
        tuple(total_padding(x) for x in vals["--padding"]) if vals["--padding"] is not None
        else vals["--p"] or (0,) * axes)
    sizes = vals["SIZE"][:1] if ndim == 1 else vals["SIZE"]
    return Query(op, sizes, vals["--k"], vals["--s"], vals["--d"], totals, vals["--output-padding"],
                 ceil_mode, same, vals["--target"], "--padding" if padding is not None else "--p")


#: The arithmetic's parameter names → the options that set them (for its ArgumentError).
FLAGS = {"n": "SIZE", "k": "--k/--kernel", "s": "--s/--stride", "d": "--d/--dilation",
         "output_padding": "--output-padding"}


def compute(q: Query) -> list[Axis]:
    """Build the layer (solving its padding first for ``--target``) and ask it about each axis."""
    try:
        return _compute(q)
    except ArgumentError as err:  # a value past torch's 64-bit sizes, e.g. 2 × a huge --padding
        flag = FLAGS.get(err.param) or ("--target" if q.targets is not None else q.pad_flag)
        raise UsageError(f"{flag}: {err.detail}") from None


def _compute(q: Query) -> list[Axis]:
    spatial = q.spatial
    solutions: list[range] | None = None
    if q.targets is None:
        layer = build(q, q.totals)
    else:  # the layer solves its own padding
        try:
            layer, solutions = build(q, (0,) * q.layer_ndim).padded_for(spatial, q.targets, q.shown > 1)
        except ShapeError as err:
            raise ShapeError(f"--target {err.numbers['target']}: {err.message}") from None
        except ConfigError as err:
            raise _for_flags(q, err, None) from None
    try:
        out = layer.output_shape((1, 1, *spatial))[2:]
    except (ShapeError, ConfigError) as err:  # output_padding too large is a ConfigError
        if "output_padding" in err.numbers:
            raise ConfigError(f"--output-padding: {err.message}", numbers=err.numbers) from None
        raise _located(q, err) from None
    names = AXES[q.shown]
    return [
        Axis(names[i], n, layer.window(i), out[i], layer.explain_axis(i, n), layer.uncovered(i, n),
             layer.explain_uncovered(i, n), solutions[i] if solutions is not None else None)
        for i, n in enumerate(spatial[: q.shown])
    ]


STYLES = {"": "", "result": "bold green", "note": "yellow", "dim": "dim"}


def is_terminal() -> bool:
    """Whether stdout is a terminal (colours, terminal width) rather than a pipe or file."""
    return sys.stdout.isatty()


@click.command(epilog="\b\nExample: shapecalc layer --k 11 --s 4 --p 2 224")
@click.argument("size")
@click.option("--k", "--kernel", "kernel", metavar="K", help="Kernel size (per axis: 3x5).")
@click.option("--s", "--stride", "stride", metavar="S",
              help="Stride [default: 1; pooling: the kernel size, as torch].")
@click.option("--p", "p", metavar="P", help="TOTAL padding of both sides (nn.Conv2d(padding=1) is --p 2).")
@click.option("--padding", metavar="P", help="Padding per side, as torch's padding= (not with --p).")
@click.option("--d", "--dilation", "dilation", metavar="D", help="Dilation [default: 1].")
@click.option("--op", type=click.Choice(OPS), default="conv", show_default=True, help="Layer kind.")
@click.option("--output-padding", metavar="OP", help="Transposed convolution's output_padding.")
@click.option("--ceil-mode", is_flag=True, help="Pooling with ceil_mode=True (torch's rule).")
@click.option("--same", is_flag=True, help="PyTorch's padding='same' (stride 1 only).")
@click.option("--target", metavar="N", help="Solve the padding that gives output size N.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (output = sizes per axis).")
def layer(size: str, kernel, stride, p, padding, dilation, op, output_padding, ceil_mode, same,
          target, as_json) -> int:
    """Output size of one conv/pool layer on input SIZE (like 224 or 224x200), with the arithmetic."""
    q = _options(size, kernel, stride, p, padding, dilation, op, output_padding, ceil_mode, same, target)
    axes = compute(q)
    lines = report_lines(q, axes)
    if as_json:
        click.echo(to_json(q, axes, [t for t, style in lines if style == "note"]))
    elif is_terminal():
        from rich.console import Console
        from rich.text import Text

        from shapecalc.core.safetext import printable, unfiltered

        console = Console(file=unfiltered(sys.stdout), highlight=False)
        for text, style in lines:
            console.print(Text(printable(text), style=STYLES[style]))
    else:
        click.echo("\n".join(text for text, _ in lines))
    return 0


__all__ = ["Axis", "Query", "build", "compute", "layer", "report_lines"]
