"""Parsing shared by the commands: shapes, per-axis values, dtypes. Errors name the parameter."""

from __future__ import annotations

import math
import re
from typing import Callable

import click

from shapecalc.core.argcheck import LARGEST
from shapecalc.core.bounds import ascii_int
from shapecalc.core.errors import ArgumentError, UsageError
from shapecalc.core.safetext import preview

_SEP = re.compile(r"[x×,*]")
_SIGNED_DIGITS = re.compile(r"-?[0-9]+")
# LARGEST: torch's 64-bit sizes. A larger value is a typo, and beyond ~4,300 digits Python
# cannot even turn it into text, so it is refused before it is converted.


def _too_large(param: str, part: str) -> UsageError:
    digits = len(part.lstrip("+-"))
    shown = part if digits <= 24 else f"{part[:12]}…({digits} digits)"
    return UsageError(f"{param}: {shown} is too large; at most {LARGEST:,} (torch's 64-bit sizes)")


def parse_ints(text: str, param: str, minimum: int = 1, allow_zero: bool = False) -> tuple[int, ...]:
    """``"224x200"`` → ``(224, 200)``; every part must be an integer ≥ ``minimum``."""
    raw = str(text).strip()
    parts = [p.strip() for p in _SEP.split(raw)] if raw else []
    if not parts or any(p == "" for p in parts):
        raise UsageError(f"{param}: expected integers separated by 'x' (like 224 or 224x200), got {text!r}")
    values = []
    for part in parts:
        if len(part) > 40 and part.lstrip("+-").isdigit():
            raise _too_large(param, part)
        if not _SIGNED_DIGITS.fullmatch(part) or part == "-0":  # no ٢٢٤, ３, 1_000, +3, -0
            raise UsageError(
                f"{param}: {preview(part, 42)} is not an integer written with the digits 0-9 "
                "(expected like 224 or 224x200)")
        value = int(part)
        if value > LARGEST:
            raise _too_large(param, part)
        lowest = 0 if allow_zero else minimum
        if value < lowest:
            # name how the text was read: "0x10" is the sizes 0 and 10, not hexadecimal 16
            read = (f" ({preview(raw, 40)} is read as the sizes {', '.join(parts[:-1])[:60]} and "
                    f"{parts[-1][:20]}: 'x' separates sizes, each ≥ {lowest})" if len(parts) > 1 else "")
            raise UsageError(f"{param}: must be ≥ {lowest}, got {value}{read}")
        values.append(value)
    return tuple(values)


def parse_shape(text: str, param: str = "--input") -> tuple[int, ...]:
    """An input shape ``N×C×H×W`` (also ``N×F``, ``N×C×L``, ``N×C×D×H×W``): 2 to 5 positive integers."""
    values = parse_ints(text, param)
    if not 2 <= len(values) <= 5:
        raise UsageError(
            f"{param}: expected a shape like 1x1x224x224 (batch x channels x spatial sizes), got {text!r}"
        )
    return values


def broadcast_axes(values: tuple[int, ...], ndim: int, param: str) -> tuple[int, ...]:
    """One value for every axis (``3`` → ``(3, 3)``) or exactly one per axis."""
    if len(values) == 1:
        return values * ndim
    if len(values) != ndim:
        raise UsageError(f"{param}: give one value or {ndim} (one per axis), got {len(values)}")
    return values


class AsciiInt(click.ParamType):
    """An integer option written in ASCII digits (:func:`~shapecalc.core.bounds.ascii_int`), at
    least ``low`` and at most ``high``: click's ``int`` takes ``٢٢٤``, ``1_000`` and ``+3``."""

    name = "integer"

    def __init__(self, low: int | None = None, high: int = LARGEST) -> None:
        self.low, self.high = low, high

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = ascii_int(value, "value", negative=self.low is None or self.low < 0)
            except ArgumentError as err:
                self.fail(err.detail, param, ctx)
        if self.low is not None and number < self.low:
            self.fail(f"must be ≥ {self.low}, got {number}", param, ctx)
        if number > self.high:
            self.fail(f"must be ≤ {self.high:,}, got {number}", param, ctx)
        return number


_DECIMAL = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


class AsciiFloat(click.ParamType):
    """A finite number written in ASCII (``0.01``, ``1e-3``): no ``nan``, ``inf``, ``١`` or ``1_0``."""

    name = "number"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        text = str(value).strip()
        if len(text) > 40 or not _DECIMAL.fullmatch(text):
            self.fail(f"expected a finite number like 0.01 or 1e-3, got {preview(text, 40)}",
                      param, ctx)
        number = float(text)
        if not math.isfinite(number):
            self.fail(f"{text} is beyond the range of a float", param, ctx)
        return number


def max_run_option() -> click.Option:
    """``--max-run-mb N``: the largest input a forward that reads tensor values may be run on
    for real (see :data:`~shapecalc.core.bounds.MAX_RUN_BYTES`), set for this run."""
    from shapecalc.core.bounds import DEFAULT_MAX_RUN_BYTES, MAX_RUN_BYTES

    def remember(ctx: click.Context, param: click.Parameter, value: int) -> int:
        MAX_RUN_BYTES.set(value * 2**20)
        return value

    return click.option(
        "--max-run-mb", type=AsciiInt(1, 2**30), default=DEFAULT_MAX_RUN_BYTES // 2**20,
        show_default=True, metavar="MB", expose_value=False, is_eager=True, callback=remember,
        help="Largest input (MiB) a forward that reads tensor values is run on for real.")


def max_nodes_option() -> click.Option:
    """``--max-nodes N``: the node budget for spec expansion, set for this run (it is a bound on
    what a data file may make shapecalc build, so it is not passed through every call)."""
    from shapecalc.core.blocks import DEFAULT_MAX_NODES, MAX_NODES

    def remember(ctx: click.Context, param: click.Parameter, value: int) -> int:
        MAX_NODES.set(value)
        return value

    return click.option(
        "--max-nodes", type=AsciiInt(1), default=DEFAULT_MAX_NODES, show_default=True,
        metavar="N", expose_value=False, is_eager=True, callback=remember,
        help="Most layers and blocks a spec file may expand to (repeat, nested repeats, aliases).",
    )


def build_options() -> Callable[[Callable], Callable]:
    """``--meta`` and ``--seq-len N``: how a ``timm:``/``hf:`` MODEL is built, set for this run
    (:data:`~shapecalc.models.build_options.BUILD_OPTIONS`) before MODEL is resolved."""
    from shapecalc.models.build_options import (BUILD_OPTIONS, DEFAULT_SEQ_LEN, MAX_SEQ_LEN,
                                                BuildOptions)

    def remember(ctx: click.Context, options: BuildOptions) -> None:
        # For this command only: an in-process caller (a test, a notebook) keeps its own.
        token = BUILD_OPTIONS.set(options)
        ctx.call_on_close(lambda: BUILD_OPTIONS.reset(token))

    def remember_meta(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        remember(ctx, BuildOptions(True if value else None, BUILD_OPTIONS.get().seq_len))
        return value

    def remember_seq_len(ctx: click.Context, param: click.Parameter, value: int) -> int:
        remember(ctx, BuildOptions(BUILD_OPTIONS.get().meta, value))
        return value

    meta = click.option(
        "--meta", is_flag=True, expose_value=False, is_eager=True, callback=remember_meta,
        help="Build a timm:/hf: model on the meta device (no weights in memory) whatever its "
             "size; above 100 M parameters it always is.")
    seq_len = click.option(
        "--seq-len", type=AsciiInt(1, MAX_SEQ_LEN), default=DEFAULT_SEQ_LEN, show_default=True,
        metavar="N", expose_value=False, is_eager=True, callback=remember_seq_len,
        help="Tokens in a text model's default input (hf: models: 1×N token ids).")
    return lambda command: meta(seq_len(command))


def dtype_option() -> click.Option:
    from shapecalc.core.inputs import DTYPE_BYTES

    return click.option(
        "--dtype", type=click.Choice(tuple(DTYPE_BYTES)), default="float32", show_default=True,
        help="Element type for memory figures.",
    )
