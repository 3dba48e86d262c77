"""What ``show``, ``graph`` and ``report`` share: MODEL and ``--input`` turned into an analysis,
and library errors that name a parameter re-raised naming this command's flag.

It sits below the command modules so that none of them imports another.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from ..errors import ArgumentError, ShapeError, UsageError
from .common import parse_shape


@contextmanager
def params_as_flags(flags: dict[str, str]) -> Iterator[None]:
    """Re-raise library errors that name a parameter (``OutputError.param``: ``path``,
    ``format``) as the same error naming this command's flag (``-o``, ``--graph``)."""
    from ..fileio import OutputError

    try:
        yield
    except OutputError as err:
        if err.param in flags:
            raise err.for_param(flags[err.param]) from None
        raise


def too_small_message(src, shape: tuple[int, ...], err: ShapeError) -> str:
    """Turn a shape failure into one line; when the input is merely too small, say how small
    it may be (the smallest square spatial size the whole model accepts)."""
    from ..api import minimum_input
    from ..errors import ShapecalcError

    if len(shape) <= 2:
        return str(err)
    try:
        smallest = minimum_input(src, shape)
    except ShapecalcError:  # e.g. a model recorded at one size cannot be rescanned
        return str(err)
    if smallest is None or min(shape[2:]) >= smallest:
        return str(err)
    fixed = "x".join(str(v) for v in shape[:2] + (smallest,) * (len(shape) - 2))
    return (
        f"input {'×'.join(map(str, shape))} is too small for {src.name}: the size collapses at "
        f"{err}; the smallest input that works is {smallest} (--input {fixed})"
    )


#: Element types an ``--input`` may name after a colon (``1x77:int64``).
INPUT_DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8",
                "uint8", "bool")


def parse_input(text: str) -> tuple[tuple[int, ...], str]:
    """``1x77:int64`` → ``((1, 77), "int64")``; without a colon the input is float32."""
    shape_text, _, kind = str(text).partition(":")
    kind = kind.strip() or "float32"
    if kind not in INPUT_DTYPES:
        raise UsageError(f"--input: element type {kind!r} is not one of {', '.join(INPUT_DTYPES)} "
                         f"(like 1x77:int64), got {text!r}")
    return parse_shape(shape_text), kind


def load_and_analyze(model: str, input_shape: str | tuple[str, ...] | None, dtype: str = "float32",
                     mode: str = "eval"):
    """Resolve MODEL and --input (one or several, each ``SHAPE[:DTYPE]``), run the engine;
    errors come back as one-line exceptions."""
    from ..api import analyze, load_model

    given = (input_shape,) if isinstance(input_shape, str) else tuple(input_shape or ())
    parsed = [parse_input(text) for text in given]  # malformed --input fails before loading
    src = load_model(model)
    if parsed:
        shapes = [s for s, _ in parsed]
        kinds = [k for _, k in parsed]
        shape = shapes[0] if len(shapes) == 1 else shapes
    else:
        shape, kinds = src.input_shape(None, "--input"), None
    if kinds is not None and all(k == "float32" for k in kinds):
        kinds = None
    try:
        analysis = analyze(src, shape, dtype, input_dtypes=kinds, mode=mode)
    except ShapeError as err:
        if isinstance(shape, list):
            raise
        raise ShapeError(too_small_message(src, shape, err)) from None
    except ArgumentError as err:
        if err.param.startswith(("input_shape", "input_dtypes")):  # the CLI's name for both
            raise UsageError(f"--input: {err.detail}") from None
        raise
    return src, analysis


__all__ = ["INPUT_DTYPES", "load_and_analyze", "params_as_flags", "parse_input", "too_small_message"]
