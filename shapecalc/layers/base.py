"""What every layer spec is: a frozen description that answers questions about one input shape.

A layer never holds weights. It is asked, for an input shape, for its output shape, its
parameter count, its multiply-accumulates and how it changes the receptive field. Field names
and defaults are PyTorch's, so a layer converts to and from ``nn.<Type>(**kwargs)`` and to a
spec-file entry without a per-layer table.
"""

from __future__ import annotations

import dataclasses
from math import prod
from typing import Any, ClassVar, Sequence

from ..arithmetic import AxisRF
from ..errors import ConfigError, ShapeError
from ..notes import Note, NoteKind
from .fields import above, at_least, at_most, between, check_fields, one_of  # noqa: F401  (shared helpers)

Shape = tuple[int, ...]
#: Receptive field per spatial axis, or ``None`` once a layer mixes every position (Linear).
RF = tuple[AxisRF, ...] | None

AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def per_axis(name: str, value: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    """Expand torch's ``int or tuple`` argument convention to one value per spatial axis."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an int or a tuple of {ndim} ints, got {value!r}")
    if isinstance(value, int):
        return (value,) * ndim
    if not isinstance(value, (tuple, list)):  # a float or a string: never iterate it
        raise ConfigError(
            f"{name} must be an int or a tuple of {ndim} ints, got {value!r}", numbers={name: value}
        )
    values = tuple(value)
    if len(values) == 1:
        values = values * ndim
    if len(values) != ndim or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ConfigError(
            f"{name} must be an int or a tuple of {ndim} ints, got {value!r}",
            numbers={name: value},
        )
    return values


def compact(values: tuple[int, ...]) -> str:
    """``(3, 3)`` → ``3``, ``(3, 5)`` → ``3x5``: the form the table and the CLI use."""
    if all(v == values[0] for v in values):
        return str(values[0])
    return "x".join(str(v) for v in values)


def format_shape(shape: Shape | None) -> str:
    if shape is None:
        return "?"
    return "×".join(str(d) for d in shape)


#: Every public layer class of the package by type name (``"Conv2d"``), filled as the classes
#: are defined (:meth:`Layer.__init_subclass__`): a new layer file needs no list to update.
LAYER_TYPES: dict[str, type["Layer"]] = {}


class Layer:
    """Base of all layer specs (subclasses are frozen dataclasses).

    ``kind`` groups layers for colours and summaries; ``arity`` is the number of inputs
    (``0`` means any number, for merges).

    Every field is checked against its declared type before a subclass's own
    ``__post_init__`` runs (see :mod:`.fields`), so that hook only checks values.
    """

    kind: ClassVar[str] = "other"
    arity: ClassVar[int] = 1
    #: Fields that are inferred from the input when left ``None`` (torch's lazy modules).
    inferred: ClassVar[tuple[str, ...]] = ()
    #: Float fields that may be ±inf or NaN (``F.pad``'s fill ``value=-inf``); others must be finite.
    non_finite: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_") and cls.__module__.startswith("shapecalc.layers."):
            other = LAYER_TYPES.get(cls.__name__)
            if other is not None and other is not cls:
                raise TypeError(f"two layer classes are named {cls.__name__} "
                                f"({other.__module__} and {cls.__module__})")
            LAYER_TYPES[cls.__name__] = cls
        own = cls.__dict__.get("__post_init__")
        if own is not None and not getattr(own, "_checks_fields", False):
            # Type checks first, whatever the subclass's hook does (and whether or not it calls
            # super()): the hook may then compare and compute without guarding its types.
            def __post_init__(self: "Layer", _own=own) -> None:
                if type(self).__post_init__ is __post_init__:  # outermost hook only
                    check_fields(self)
                _own(self)

            __post_init__._checks_fields = True  # type: ignore[attr-defined]
            __post_init__.__doc__ = own.__doc__
            cls.__post_init__ = __post_init__  # type: ignore[method-assign]

    def __post_init__(self) -> None:
        check_fields(self)

    # ---- questions every layer answers -------------------------------------------------
    def output_shape(self, *inputs: Shape) -> Shape:
        return inputs[0]

    def param_count(self, *inputs: Shape) -> int:
        return 0

    def mac_count(self, output: Shape, *inputs: Shape) -> int:
        return 0

    def receptive_field(self, rf: RF, *inputs: Shape) -> RF:
        return rf

    def resolve(self, *inputs: Shape) -> "Layer":
        """This layer with every inferred field filled from the input shape."""
        return self

    def notes(self, output: Shape, *inputs: Shape) -> list[Note]:
        """Remarks worth a user's attention (dropped pixels, inferred sizes), as typed notes."""
        return []

    def explain(self, output: Shape, *inputs: Shape) -> list[str]:
        """The arithmetic behind the output shape, with the numbers substituted."""
        return []

    # ---- identity ------------------------------------------------------------------------
    @property
    def type_name(self) -> str:
        return type(self).__name__

    def arguments(self) -> dict[str, Any]:
        """Constructor arguments that differ from their defaults, in torch's names."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if not f.init:
                continue
            value = getattr(self, f.name)
            default = f.default if f.default is not dataclasses.MISSING else dataclasses.MISSING
            if value != default:
                out[f.name] = value
        return out

    def torch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``torch.nn.<type_name>``; resolved layers only."""
        kwargs = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.init:
                kwargs[f.name] = getattr(self, f.name)
        return kwargs

    def describe(self) -> str:
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in self.arguments().items())
        return f"{self.type_name}({args})"


def _fmt(value: Any) -> str:
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        return compact(value)
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def spatial_of(layer: Layer, shape: Shape, ndim: int) -> tuple[int, tuple[int, ...], bool]:
    """Split ``shape`` into (channels, spatial sizes, batched) for an ``ndim``-D layer.

    Torch accepts a batched ``(N, C, *spatial)`` or an unbatched ``(C, *spatial)`` input.
    """
    if len(shape) == ndim + 2:
        return shape[1], shape[2:], True
    if len(shape) == ndim + 1:
        return shape[0], shape[1:], False
    raise ShapeError(
        f"expected a {ndim + 1}-D (unbatched) or {ndim + 2}-D (batched) input, "
        f"got {len(shape)}-D {format_shape(shape)}",
        layer=layer.describe(),
        numbers={"input_shape": shape},
    )


def batch_positions(output: Shape, ndim: int) -> int:
    """Batch × output spatial positions: how many times each weight is applied."""
    spatial = prod(output[-ndim:]) if ndim else 1
    batch = output[0] if len(output) == ndim + 2 else 1
    return batch * spatial


def batch_size(shape: Shape, ndim_after_batch: int) -> int:
    return shape[0] if len(shape) > ndim_after_batch else 1


def dropped_notes(dropped: list[tuple[str, int]]) -> list[Note]:
    """``[("H", 3), ("W", 3)]`` → one DROPS note, "drops 3 px (H, W)": one per distinct count."""
    by_count: dict[int, list[str]] = {}
    for axis, count in dropped:
        if count:
            by_count.setdefault(count, []).append(axis)
    return [Note.of(NoteKind.DROPS, px=count, axes=tuple(axes)) for count, axes in by_count.items()]


def inferred_note(field: str, value: int) -> Note:
    """``in_channels=5 inferred``: a lazy argument taken from the input shape."""
    return Note.of(NoteKind.INFERRED, field=field, value=value)
