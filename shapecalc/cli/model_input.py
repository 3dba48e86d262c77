"""What ``show``, ``check``, ``graph`` and ``report`` share: MODEL and ``--input`` turned into
an analysis, and library errors that name a parameter re-raised naming this command's flag.

``--input`` is read here only (:func:`input_option`, :func:`parse_inputs`): one per tensor
the forward takes, each ``SHAPE[:DTYPE]``.

It sits below the command modules so that none of them imports another.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import click

from shapecalc.core.errors import ArgumentError, ShapeError, UsageError
from shapecalc.cli.common import parse_shape
from shapecalc.core.inputs import DEFAULT_DTYPE, DTYPE_BYTES, Input, Inputs, dtype_name


@contextmanager
def params_as_flags(flags: dict[str, str]) -> Iterator[None]:
    """Re-raise library errors that name a parameter (``OutputError.param``: ``path``,
    ``format``) as the same error naming this command's flag (``-o``, ``--graph``)."""
    from shapecalc.core.fileio import OutputError

    try:
        yield
    except OutputError as err:
        if err.param in flags:
            raise err.for_param(flags[err.param]) from None
        raise


def too_small_message(src, shape: tuple[int, ...], err: ShapeError) -> str:
    """Turn a shape failure into one line; when the input is merely too small, say how small
    it may be (the smallest square spatial size the whole model accepts)."""
    from shapecalc.diagnose.size_search import minimum_input
    from shapecalc.core.errors import ShapecalcError

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


def parse_input(text: str) -> Input:
    """``1x77:int64`` → ``Input((1, 77), "int64")``; without a colon the input is float32. The
    element types are the library's (:data:`~shapecalc.core.inputs.DTYPE_BYTES`)."""
    shape_text, _, kind = str(text).partition(":")
    kind = kind.strip() or DEFAULT_DTYPE
    try:
        kind = dtype_name(kind, "--input")
    except ArgumentError:
        raise UsageError(f"--input: element type {kind!r} is not one of {', '.join(DTYPE_BYTES)} "
                         f"(like 1x77:int64), got {text!r}") from None
    return Input(parse_shape(shape_text), kind)


def input_option() -> click.Option:
    """``--input SHAPE[:DTYPE]``, repeatable: one per tensor the model's forward takes."""
    return click.option(
        "--input", "input_shape", metavar="NxCxHxW[:DTYPE]", multiple=True,
        help="Input shape, e.g. 1x3x224x224 (default: the model's own); repeat it for a forward "
             "with several inputs, and add an element type for integer inputs "
             "(--input 1x3x224x224 --input 1x77:int64).")


def parse_inputs(given: str | Sequence[str] | None) -> list[Input]:
    """Every ``--input`` (:func:`parse_input`), none when none is given; malformed values fail
    here, before the model is loaded."""
    texts = (given,) if isinstance(given, str) else tuple(given or ())
    return [parse_input(text) for text in texts]


def model_inputs(src, parsed: Sequence[Input]) -> Inputs:
    """The ``--input`` values as :class:`Inputs`, or the model's own inputs when none was given.
    Shapes given without element types take the model's own (``--input 1x256`` for a text
    model stays token ids)."""
    if parsed and (not all(p.dtype == DEFAULT_DTYPE for p in parsed) or src.default_dtypes is None):
        return Inputs(tuple(parsed))
    shapes = [p.shape for p in parsed]
    return src.inputs((shapes[0] if len(shapes) == 1 else shapes) if shapes else None,
                      shape_param="--input")


def input_text(shape: Sequence[int], kind: str = "float32") -> str:
    """A shape as ``--input`` takes it: ``1x3x32x32``, ``1x77:int64``."""
    return "x".join(map(str, shape)) + ("" if kind == "float32" else f":{kind}")


@contextmanager
def inputs_as_flag() -> Iterator[None]:
    """Library errors about the input shapes or their element types, naming ``--input``."""
    try:
        yield
    except ArgumentError as err:
        if err.param.startswith(("input_shape", "input_dtypes")):  # the CLI's name for both
            raise UsageError(f"--input: {err.detail}") from None
        raise


def load_and_analyze(model: str, input_shape: str | tuple[str, ...] | None, dtype: str = "float32",
                     mode: str = "eval"):
    """Resolve MODEL and --input (one or several, each ``SHAPE[:DTYPE]``), run the engine;
    errors come back as one-line exceptions. A model whose sizes fit but which folds the batch
    (``view(-1, 400)`` at the wrong size) gets that as a model-wide note, naming the operation,
    its line and the code fix, so every format says it (:func:`note_fold`)."""
    from shapecalc.diagnose.batch import find_fold
    from shapecalc.models.api import load_model

    src = load_model(model)
    inputs = model_inputs(src, parse_inputs(input_shape))
    analysis = analyze_inputs(src, inputs, dtype, mode)
    note_fold(analysis, find_fold(src, inputs, analysis))
    return src, analysis


def note_fold(analysis, fold) -> None:
    """A batch fold (:class:`~shapecalc.diagnose.batch.BatchFold`, or ``None``) as the
    analysis's model-wide note, which the table header, JSON and the report's header show."""
    if fold is not None:
        analysis.notes.append(fold.note())


def analyze_inputs(src, inputs, dtype: str = "float32", mode: str = "eval"):
    """Run the engine on a resolved model's inputs; a model that does not fit one input says
    how small that input may be (:func:`too_small_message`)."""
    from shapecalc.models.api import analyze

    try:
        with inputs_as_flag():
            return analyze(src, inputs, dtype, mode=mode)
    except ShapeError as err:
        if len(inputs) > 1:
            raise
        raise ShapeError(too_small_message(src, inputs.first, err)) from None


__all__ = ["analyze_inputs", "input_option", "input_text", "inputs_as_flag", "load_and_analyze", "model_inputs", "note_fold",
           "params_as_flags", "parse_input", "parse_inputs", "too_small_message"]
