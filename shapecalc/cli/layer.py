"""``shapecalc layer``: one convolution or pooling layer, worked by hand.

The output size comes with the formula, the user's numbers substituted into it (the engine's
own ``explain_*`` text, so the CLI cannot drift from the arithmetic), what the padding means
in torch terms, and which rows the stride silently drops. ``--target`` runs the formula
backwards. Plain text when piped; rich colours only on a terminal.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

import click

from .. import arithmetic as ar
from ..errors import ConfigError, LayerError, ShapeError, UsageError
from .common import broadcast_axes, parse_ints

OPS = ("conv", "conv-transpose", "maxpool", "avgpool")
MODULES = {"conv": "Conv", "conv-transpose": "ConvTranspose", "maxpool": "MaxPool", "avgpool": "AvgPool"}
AXES = {1: ("",), 2: ("H", "W"), 3: ("D", "H", "W")}


@dataclass
class Axis:
    """One spatial axis of the query and what the engine says about it."""

    name: str
    n: int
    k: int
    s: int
    p: int  # total padding of both sides
    d: int
    output_padding: int = 0
    output: int = 0
    explain: list[str] = field(default_factory=list)
    dropped: int = 0
    solutions: list[int] | None = None  # total paddings reaching --target


def _module(op: str, ndim: int) -> str:
    # A single size reads as a square image: the case people ask about (nn.Conv2d).
    return f"nn.{MODULES[op]}{2 if ndim == 1 else ndim}d"


def _pool_limit(op: str, k: int, d: int, ndim: int) -> int:
    """Torch's largest per-side pooling padding: half the kernel (max pooling 2-D/3-D: of the
    dilated span)."""
    if op == "maxpool" and ndim != 1:
        return ar.effective_kernel(k, d) // 2
    return k // 2


def forward(op: str, a: Axis, ceil_mode: bool) -> tuple[int, list[str]]:
    """Output size and its substituted arithmetic for one axis."""
    if op == "conv":
        return ar.conv_output_size(a.n, a.k, a.s, a.p, a.d), ar.explain_conv(a.n, a.k, a.s, a.p, a.d)
    if op == "conv-transpose":
        args = (a.n, a.k, a.s, a.p, a.d, a.output_padding)
        return ar.transposed_conv_output_size(*args), ar.explain_transposed(*args)
    out = ar.pool_output_size(a.n, a.k, a.s, a.p, a.d, ceil_mode)
    return out, ar.explain_pool(a.n, a.k, a.s, a.p, a.d, ceil_mode)


def uncovered(op: str, a: Axis, ceil_mode: bool) -> int:
    """Rows of the padded input after the last window (``(n − k_eff + p) mod s`` in floor mode)."""
    if op == "conv-transpose":
        return 0
    if not ceil_mode:
        return ar.dropped_pixels(a.n, a.k, a.s, a.p, a.d)
    return max(0, a.p // 2 + a.n - (a.output - 1) * a.s - ar.effective_kernel(a.k, a.d))


def solve(op: str, a: Axis, target: int, ceil_mode: bool, ndim: int) -> list[int]:
    """Every total padding giving ``target`` on this axis, within what torch accepts."""
    if op == "conv-transpose":
        p = (a.n - 1) * a.s + ar.effective_kernel(a.k, a.d) + a.output_padding - target
        return [p] if p >= 0 else []
    if op == "conv" or not ceil_mode:
        found = ar.solve_padding(a.n, a.k, a.s, target, a.d)
    else:  # ceil mode has no closed form worth trusting: try every padding torch allows
        found = []
        for p in range(0, 2 * _pool_limit(op, a.k, a.d, ndim) + 1):
            try:
                if ar.pool_output_size(a.n, a.k, a.s, p, a.d, True) == target:
                    found.append(p)
            except LayerError:
                continue
    if op in ("maxpool", "avgpool"):
        limit = _pool_limit(op, a.k, a.d, ndim)
        found = [p for p in found if p - p // 2 <= limit]
    return found


def _no_solution(op: str, a: Axis, target: int, ceil_mode: bool) -> str:
    where = f" on axis {a.name}" if a.name else ""
    try:
        at_zero = forward(op, Axis(a.name, a.n, a.k, a.s, 0, a.d, a.output_padding), ceil_mode)[0]
    except LayerError:
        at_zero = None
    if op == "conv-transpose":
        return (f"--target {target}: no padding gives {target}{where}: with padding 0 the "
                f"transposed convolution already gives {at_zero}, and padding only shrinks it")
    if at_zero is not None and at_zero > target:
        return (f"--target {target}: no padding gives {target}{where}: with p = 0 the output is "
                f"already {at_zero} and padding only makes it larger; use a larger stride or kernel")
    return (f"--target {target}: no padding gives {target}{where} within torch's limit for "
            f"pooling (at most half the kernel per side)")


def _options(size: str, kernel: str | None, stride: str | None, p: str | None, padding: str | None,
             dilation: str | None, op: str, output_padding: str | None, ceil_mode: bool,
             same: bool, target: str | None) -> tuple[list[Axis], list[int] | None]:
    """Parse and cross-check the command line into per-axis values (UsageError on misuse)."""
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
    vals = {key: broadcast_axes(v, ndim, key) if v is not None else None for key, v in raw.items()}

    if p is not None and padding is not None:
        raise UsageError("--p and --padding: give one (--p is the total of both sides, --padding "
                         "is per side as in torch: --padding 1 is --p 2)")
    if same and (p is not None or padding is not None or target is not None):
        raise UsageError("--same: it chooses the padding itself; drop --p/--padding/--target")
    if target is not None and (p is not None or padding is not None):
        raise UsageError("--target: it solves the padding; drop --p/--padding")
    pooling = op in ("maxpool", "avgpool")
    if ceil_mode and not pooling:
        raise UsageError("--ceil-mode: only for --op maxpool or avgpool")
    if output_padding is not None and op != "conv-transpose":
        raise UsageError("--output-padding: only for --op conv-transpose")
    if dilation is not None and op == "avgpool" and max(vals["--d"]) != 1:
        raise UsageError("--d/--dilation: torch's average pooling has no dilation")

    k = vals["--k"]
    s = vals["--s"] or (k if pooling else (1,) * ndim)  # torch: pool stride defaults to kernel
    d = vals["--d"] or (1,) * ndim
    if same:
        if op != "conv":
            raise UsageError("--same: PyTorch's padding='same' exists only for --op conv")
        if max(s) != 1:
            raise UsageError(f"--same: PyTorch's padding='same' needs stride 1, got --s {max(s)}; "
                             "use --target N to solve the padding for the output size you want")
        totals = tuple(sum(ar.same_padding(kk, dd)) for kk, dd in zip(k, d))
    elif vals["--padding"] is not None:
        totals = tuple(2 * x for x in vals["--padding"])
    else:
        totals = vals["--p"] or (0,) * ndim
    op_pad = vals["--output-padding"] or (0,) * ndim
    names = AXES[ndim]
    axes = [Axis(names[i], vals["SIZE"][i], k[i], s[i], totals[i], d[i], op_pad[i]) for i in range(ndim)]
    if pooling:
        for a in axes:
            limit = _pool_limit(op, a.k, a.d, ndim)
            if a.p - a.p // 2 > limit:
                option = "--padding" if padding is not None else "--p"
                raise ConfigError(
                    f"{option}: padding {a.p - a.p // 2} per side (p = {a.p} total) is more than "
                    f"half the kernel {a.k}: torch's {_module(op, ndim)} allows at most {limit} per side",
                    axis=a.name or None, numbers={"padding": a.p, "kernel": a.k, "limit": limit},
                )
    return axes, (list(vals["--target"]) if vals["--target"] is not None else None)


def compute(op: str, axes: list[Axis], ceil_mode: bool, targets: list[int] | None) -> None:
    """Fill every axis's output, arithmetic and dropped rows (and padding, for ``--target``)."""
    ndim = len(axes)
    for i, a in enumerate(axes):
        if targets is not None:
            a.solutions = solve(op, a, targets[i], ceil_mode, ndim)
            if not a.solutions:
                raise ShapeError(_no_solution(op, a, targets[i], ceil_mode))
            symmetric = [p for p in a.solutions if p % 2 == 0]
            a.p = (symmetric or a.solutions)[0]
        try:
            a.output, a.explain = forward(op, a, ceil_mode)
        except LayerError as err:
            raise err.replace(layer=f"{_module(op, ndim)[3:]}", axis=a.name or None) from None
        a.dropped = uncovered(op, a, ceil_mode)


def report_lines(op: str, axes: list[Axis], ceil_mode: bool,
                 same: bool = False) -> list[tuple[str, str]]:
    """The text, line by line, each with a style name (``""``, ``result``, ``note``, ``dim``)."""
    ndim = len(axes)
    module = _module(op, ndim)
    lines: list[tuple[str, str]] = []
    seen: dict[tuple, str] = {}
    for a in axes:
        key = (a.n, a.k, a.s, a.p, a.d, a.output_padding)
        prefix = f"{a.name}: " if a.name else ""
        if key in seen:
            lines.append((f"{prefix}same as {seen[key]}", "dim"))
            continue
        seen[key] = a.name
        lines.append((f"{prefix}{op}  n = {a.n}, k = {a.k}, s = {a.s}, p = {a.p}, d = {a.d}"
                      + (f", output_padding = {a.output_padding}" if op == "conv-transpose" else "")
                      + (", ceil_mode" if ceil_mode else ""), "dim"))
        if a.solutions is not None:
            lines.extend(_target_lines(a, module))
        lines.extend((("   " if prefix else "") + line, "") for line in a.explain)
    lines.append((f"output: {'x'.join(str(a.output) for a in axes)}", "result"))
    lines.extend((note, "note") for note in _notes(op, axes, module, same))
    return lines


def _target_lines(a: Axis, module: str) -> list[tuple[str, str]]:
    sols = a.solutions or []
    out = [(f"   total paddings p giving {a.output or ''}".rstrip() + f": {', '.join(map(str, sols))}", "")]
    symmetric = [p for p in sols if p % 2 == 0]
    if symmetric:
        out.append(("   torch-expressible (symmetric): "
                    + ", ".join(f"p = {p} → {module}(padding={p // 2})" for p in symmetric), "result"))
    else:
        p = sols[0]
        out.append((f"   none is symmetric, so torch's padding= cannot give it; pad first with "
                    f"nn.ZeroPad2d: {p // 2} before, {p - p // 2} after (p = {p})", "note"))
    return out


def _notes(op: str, axes: list[Axis], module: str, same: bool = False) -> list[str]:
    notes = []
    ps = sorted({a.p for a in axes})
    if same:
        sides = sorted({(a.p // 2, a.p - a.p // 2) for a in axes})
        notes.append("p is the TOTAL padding of both sides; padding='same' pads "
                     + ", ".join(f"{l} before and {r} after" for l, r in sides)
                     + " (torch puts an odd pixel after).")
    elif op == "conv-transpose":
        notes.append("p is the TOTAL padding removed from both sides: "
                     f"{module}(padding=1) is p = 2.")
    elif all(p % 2 == 0 for p in ps):
        example = ps[-1] // 2 or 1
        notes.append(f"p is the TOTAL padding of both sides: {module}(padding={example}) is "
                     f"p = {2 * example}.")
    else:
        odd = [p for p in ps if p % 2]
        notes.append(f"p is the TOTAL padding of both sides; p = {odd[0]} is odd, which torch's integer "
                     f"padding= cannot express: pad first ({odd[0] // 2} before, "
                     f"{odd[0] - odd[0] // 2} after) with nn.ZeroPad2d or F.pad.")
    for a in axes:
        where = f" (axis {a.name})" if a.name else ""
        if a.dropped:
            pad_right = a.p - a.p // 2
            real = max(0, a.dropped - pad_right)
            if real == a.dropped:
                of_pad = ""
            elif a.dropped == 1:
                of_pad = "; it is padding, so no input pixel is lost"
            else:
                of_pad = f"; {a.dropped - real} of them padding"
            rows, verb = ("row/column", "is") if a.dropped == 1 else ("rows/columns", "are")
            notes.append(f"{a.dropped} {rows} at the bottom/right {verb} never covered by a "
                         f"window{where}: ({a.n} − {ar.effective_kernel(a.k, a.d)} + {a.p}) mod "
                         f"{a.s} = {a.dropped}{of_pad}.")
        span = ar.effective_kernel(a.k, a.d)
        if op != "conv-transpose" and a.s > span:
            notes.append(f"stride {a.s} > kernel span {span}{where}: {a.s - span} of every {a.s} "
                         "rows/columns fall between windows and are never read.")
    return notes


def to_json(op: str, axes: list[Axis], ceil_mode: bool, notes: list[str]) -> str:
    data = {
        "op": op,
        "input": [a.n for a in axes],
        "kernel": [a.k for a in axes],
        "stride": [a.s for a in axes],
        "padding_total": [a.p for a in axes],
        "padding_per_side": [a.p // 2 if a.p % 2 == 0 else None for a in axes],
        "dilation": [a.d for a in axes],
        "output": [a.output for a in axes],
        "dropped": [a.dropped for a in axes],
        "explain": [a.explain for a in axes],
        "notes": notes,
    }
    if op == "conv-transpose":
        data["output_padding"] = [a.output_padding for a in axes]
    if op in ("maxpool", "avgpool"):
        data["ceil_mode"] = ceil_mode
    if axes[0].solutions is not None:
        data["solutions"] = [{"axis": a.name or None, "paddings": a.solutions,
                              "symmetric": [p for p in a.solutions if p % 2 == 0]} for a in axes]
    return json.dumps(data, ensure_ascii=False)


STYLES = {"": "", "result": "bold green", "note": "yellow", "dim": "dim"}


def is_terminal() -> bool:
    """Whether stdout is a terminal (colours, terminal width) rather than a pipe or file."""
    return sys.stdout.isatty()


@click.command()
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
    """Output size of one conv/pool layer on input SIZE (like 224 or 224x200), with the arithmetic.

    Example: `shapecalc layer --k 11 --s 4 --p 2 224` → 54.
    """
    axes, targets = _options(size, kernel, stride, p, padding, dilation, op, output_padding,
                             ceil_mode, same, target)
    compute(op, axes, ceil_mode, targets)
    lines = report_lines(op, axes, ceil_mode, same)
    if as_json:
        click.echo(to_json(op, axes, ceil_mode, [t for t, style in lines if style == "note"]))
    elif is_terminal():
        from rich.console import Console
        from rich.text import Text

        console = Console(highlight=False)
        for text, style in lines:
            console.print(Text(text, style=STYLES[style]))
    else:
        click.echo("\n".join(text for text, _ in lines))
    return 0


__all__ = ["Axis", "compute", "forward", "layer", "report_lines", "solve", "uncovered"]
