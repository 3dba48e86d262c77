"""What every layer spec is: a frozen description that answers questions about one input shape.

A layer never holds weights. It is asked, for an input shape, for its output shape, its
parameter count, its multiply-accumulates and how it changes the receptive field. Field names
and defaults are PyTorch's, so a layer converts to and from ``nn.<Type>(**kwargs)`` and to a
spec-file entry without a per-layer table.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from math import prod
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from shapecalc.core.arithmetic import AxisRF, AxisStep, FieldRule, Window, explain_tf_same, total_padding
from shapecalc.core.arithmetic.field_axes import (
    AxisMoves, Joined, Mixed, Permuted, Placed, Read, Reshaped, follow, placed, where_of,
)
from shapecalc.core.arithmetic.inverse import preferred_padding
from shapecalc.core.errors import ConfigError, ShapeError
from shapecalc.core.layers.fields import above, at_least, at_most, between, check_fields, one_of  # noqa: F401  (shared helpers)

if TYPE_CHECKING:  # imported where notes are made: `shapecalc layer` asks for none
    from shapecalc.core.layers.saved import Backward, Saved
    from shapecalc.core.notes import Note

Shape = tuple[int, ...]
#: Receptive field per spatial axis, ``None`` once a layer mixes every position (Linear), or
#: ``FieldRule.UNKNOWN`` after a layer that has no rule (shown as unknown, never guessed).
RF = tuple[AxisRF, ...] | FieldRule | None
#: How a layer reads positions: one step per spatial axis, a rule for all of them, or how it
#: moves, merges or mixes whole axes (:mod:`~shapecalc.core.arithmetic.field_axes`).
FieldSteps = tuple[AxisStep, ...] | FieldRule | AxisMoves

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


class LayerKind(StrEnum):
    """What a layer does, as tables and drawings colour it and diagnoses read through it."""

    CONV = "conv"
    POOL = "pool"
    NORM = "norm"
    ACTIVATION = "activation"
    LINEAR = "linear"
    RESHAPE = "reshape"
    MERGE = "merge"
    DROPOUT = "dropout"
    OTHER = "other"


class Layer:
    """Base of all layer specs (subclasses are frozen dataclasses).

    ``kind`` groups layers for colours and summaries; ``arity`` is the number of inputs
    (``0`` means any number, for merges).

    Every field is checked against its declared type before a subclass's own
    ``__post_init__`` runs (see :mod:`.fields`), so that hook only checks values.
    """

    kind: ClassVar[LayerKind] = LayerKind.OTHER
    arity: ClassVar[int] = 1
    #: True for layers whose shape comes from running torch, not from a formula of their own.
    measured: ClassVar[bool] = False
    #: Fields that are inferred from the input when left ``None`` (torch's lazy modules).
    inferred: ClassVar[tuple[str, ...]] = ()
    #: Float fields that may be ±inf or NaN (``F.pad``'s fill ``value=-inf``); others must be finite.
    non_finite: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_") and cls.__module__.startswith("shapecalc.core.layers."):
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

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        """How each output position reads input positions, per spatial axis (:class:`AxisStep`),
        or one :class:`FieldRule` for all. A layer without a rule says ``UNKNOWN``: there is no
        default that passes a field on unchanged."""
        return FieldRule.UNKNOWN

    def receptive_field(self, rf: RF, *inputs: Shape) -> RF:
        """The field after this layer, from what its input's field was (:func:`next_field`)."""
        return next_field(rf, self.field_steps(*inputs))

    def extra_outputs(self, *inputs: Shape) -> tuple[tuple[str, Shape], ...]:
        """Named shapes of what ``forward`` returns besides the main output (an LSTM's ``h_n``
        and ``c_n``): listed by tracers, never counted again; the node's cost is its own."""
        return ()

    def resolve(self, *inputs: Shape) -> "Layer":
        """This layer with every inferred field filled from the input shape."""
        return self

    # ---- what a training step keeps (shapecalc.core.memory) ------------------------------
    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...] | None:
        """The tensors autograd keeps for this layer's backward (:mod:`.saved`); ``None``
        where no rule is known, which the memory account shows as unknown, never as 0."""
        return None

    def output_is_view(self, training: bool) -> bool:
        """Whether the output shares its input's storage (a view, an in-place op, an eval
        dropout): a tensor kept through both is one tensor."""
        return False

    def param_tensors(self, *inputs: Shape) -> int | None:
        """How many parameter tensors the layer holds (an optimizer keeps a step count per
        tensor); ``None`` where the layer does not know."""
        return 0 if self.param_count(*inputs) == 0 else None

    def notes(self, output: Shape, *inputs: Shape) -> list[Note]:
        """Remarks worth a user's attention (dropped pixels, inferred sizes), as typed notes."""
        return []

    def explain(self, output: Shape, *inputs: Shape) -> list[str]:
        """The arithmetic behind the output shape, with the numbers substituted."""
        return []

    def explain_cost(self, output: Shape, *inputs: Shape) -> list[str]:
        """The arithmetic behind the parameters and MACs, for a row with no size arithmetic to
        show (a Linear, a norm layer): every number as the table prints it. Here the MACs as
        applications × parameters where that is how they arise; layers that know their
        parameters' formula say more."""
        params = self.param_count(*inputs)
        if params <= 0:
            return []
        macs = self.mac_count(output, *inputs)
        if macs and macs % params == 0:
            return [f"params = {params:,}",
                    f"MACs = applications · params = {macs // params:,} · {params:,} = {macs:,}"]
        return [f"params = {params:,}", f"MACs = {macs:,}"]

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


def next_field(rf: RF, steps: FieldSteps) -> RF:
    """A field carried through a layer's steps. A layer that mixes every position makes it
    global whatever came before, and a global field stays global (whatever an output reads,
    each of those positions read everything); anything else unknown on the way stays unknown,
    even through a mix of whole axes: a mean over an (N, C, H, W) map's H and W is global only
    where the fields are known to sit on H and W, for the batch axis may hold positions too
    (windows folded there: each output reads its window). A layer that moves axes
    (:data:`AxisMoves`) moves the fields with them (:mod:`~shapecalc.core.arithmetic.field_axes`);
    per-axis steps read the trailing axes, so a field held elsewhere (channels-last) meets them
    as unknown."""
    if steps is FieldRule.POINTWISE:  # most layers: the field passes on, global or unknown too
        return rf
    if steps is FieldRule.GLOBAL or rf is None:
        return None
    if steps is FieldRule.UNKNOWN or rf is FieldRule.UNKNOWN:
        return FieldRule.UNKNOWN
    if isinstance(steps, Joined):
        return merge_fields([rf], steps)
    if isinstance(steps, AxisMoves):
        return _moved(rf, steps)
    if len(steps) != len(rf) or isinstance(rf, Placed):  # the layer's spatial axes are not the field's
        return FieldRule.UNKNOWN
    out = tuple([a.through(s) for a, s in zip(rf, steps)])
    return FieldRule.UNKNOWN if None in out else out  # type: ignore[return-value]


def _moved(rf: tuple, moves: Permuted | Reshaped | Mixed) -> RF:
    """``rf`` through a layer that permutes, reshapes or mixes whole axes."""
    where = where_of(rf, moves.before)
    followed = follow(where, moves) if where is not None else None
    if followed is None:
        return FieldRule.UNKNOWN
    if all(r is Read.WHOLE for r in followed.reads):
        return None  # every field read whole: global, as a Linear on a flattened map
    fields = []
    for a, read, f in zip(rf, followed.reads, where):
        a = a.through(AxisStep.whole(f.size)) if read is Read.WHOLE else a
        if a is None:
            return FieldRule.UNKNOWN
        fields.append(a)
    after = moves.after if not isinstance(moves, Permuted) else tuple(moves.before[i] for i in moves.order)
    return placed(fields, followed.where, after)


def merge_fields(fields: Sequence[RF], steps: FieldSteps) -> RF:
    """The field of a node with several inputs: for a position-wise merge (add, concatenation
    along the channels) what any input reads, position by position. Inputs whose fields sit on
    other axes (channels-last) merge only when they sit alike; a concatenation (:class:`Joined`)
    along an axis that holds a field moves the later inputs' positions, which no rule follows."""
    if steps is FieldRule.POINTWISE and all(type(f) is tuple for f in fields):
        return _united(fields)  # most merges (a residual add): known fields on the trailing axes
    if isinstance(steps, Mixed) and steps.attends:
        return _attended(fields, steps)
    if isinstance(steps, AxisMoves) and not isinstance(steps, Joined):
        return next_field(fields[0], steps)  # the others only lend sizes (x.view(B, N, -1))
    if steps is FieldRule.GLOBAL or None in fields:
        return None
    if isinstance(steps, Joined):
        if any(isinstance(f, Placed) and any(w.axis == steps.axis for w in f.where) for f in fields):
            return FieldRule.UNKNOWN
        if not any(isinstance(f, Placed) for f in fields) and steps.axis >= 2:
            return FieldRule.UNKNOWN  # along a trailing (spatial) axis
        steps = FieldRule.POINTWISE
    if steps is not FieldRule.POINTWISE or FieldRule.UNKNOWN in fields:
        return FieldRule.UNKNOWN
    placements = {f.where if isinstance(f, Placed) else None for f in fields}  # type: ignore[union-attr]
    if len(placements) > 1:
        return FieldRule.UNKNOWN
    return _united(fields)  # type: ignore[arg-type]


def _united(fields: Sequence[tuple]) -> RF:
    """Known fields placed alike, merged position by position: what any input reads, axis by
    axis (inputs with fewer axes, (N, C) gates, broadcast); unknown where two do not advance
    alike."""
    axes = max(map(len, fields))
    spatial = [f for f in fields if len(f) == axes]
    merged = list(spatial[0])
    for f in spatial[1:]:
        for i, a in enumerate(f):
            union = merged[i].union(a) if merged[i] is not None else None
            merged[i] = union
    if None in merged:
        return FieldRule.UNKNOWN
    first = spatial[0]
    return Placed(merged, first.where) if isinstance(first, Placed) else tuple(merged)


#: A conv's or pool's ``padding`` that is TensorFlow's ``'SAME'`` for each input size (timm's
#: ``Conv2dSame``, ``MaxPool2dSame`` …: ``F.pad`` first, then the layer with padding 0). Torch's
#: own ``padding='same'`` is a fixed padding and exists for stride 1 only.
TF_SAME = "tf_same"


def _attended(fields: Sequence[RF], steps: Mixed) -> RF:
    """Attention's field: each output reads its query's row and every key and value row of
    its batch, so the query's field read whole along ``steps.axes`` is the answer only when the
    keys, values and mask have the very same fields in the same places; a global input makes
    it global; anything else is unknown."""
    if any(f is None for f in fields):
        return None
    first = fields[0]
    if any(f != first or getattr(f, "where", None) != getattr(first, "where", None)
           for f in fields[1:]):
        return FieldRule.UNKNOWN
    return next_field(first, steps)


def window_steps(layer: "_WindowLayer", spatial: Sequence[int]) -> tuple[AxisStep, ...]:
    """One :meth:`AxisStep.window` per axis of a conv or pool, for input sizes ``spatial``."""
    return tuple(w.at(n).step() for w, n in zip(layer._windows, spatial))


class _WindowLayer(Layer):
    """A layer that slides a window along each spatial axis (convolutions, pooling).

    Subclasses hold one :class:`~shapecalc.core.arithmetic.Window` per axis (``windows``), built
    once from torch's arguments when the layer is made, and answer, per axis, the questions
    ``shapecalc layer`` prints: the substituted arithmetic, the rows no window reads, the
    paddings that reach a target size and the largest padding torch allows. The rules
    themselves live in ``arithmetic``.
    """

    ndim: ClassVar[int] = 2
    #: Padding makes the output smaller (a transposed convolution) rather than larger.
    padding_shrinks: ClassVar[bool] = False

    @property
    def windows(self) -> tuple[Window, ...]:
        """Kernel, stride, dilation and padding (total and before the input) per axis."""
        return self._windows

    def window(self, i: int) -> Window:
        return self._windows[i]

    def window_at(self, i: int, n: int) -> Window:
        """The window of axis ``i`` for input size ``n`` (TF ``'SAME'`` padding depends on it)."""
        return self._windows[i].at(n)

    def padding_limit(self, i: int) -> int | None:
        """The largest padding per side torch accepts on axis ``i`` (``None``: no limit)."""
        return None

    def _set_windows(self, windows: Sequence[Window]) -> None:
        """Store the per-axis windows (and the kernel's volume, which every parameter count
        multiplies by)."""
        object.__setattr__(self, "_windows", tuple(windows))
        object.__setattr__(self, "_kernel_volume", prod(w.k for w in windows))

    def _windows_of(self, label: str, k: Sequence[int], s: Sequence[int], d: Sequence[int],
                    output_padding: Sequence[int] | None = None,
                    ceil_mode: bool = False) -> tuple[Window, ...]:
        """Unpadded windows from per-axis kernel, stride and dilation (and a transposed
        convolution's output padding, a pool's ceil mode; TF ``'SAME'`` padding if the layer's
        ``padding`` says so); a value below 1 is a :class:`ConfigError` naming the layer
        (``label``)."""
        tf_same = getattr(self, "padding", None) == TF_SAME
        try:
            return tuple(Window(k[i], s[i], 0, 0, d[i], output_padding[i] if output_padding else 0, ceil_mode,
                                tf_same) for i in range(self.ndim))
        except ConfigError as err:
            raise err.replace(layer=label) from None

    @staticmethod
    def _padded(windows: Sequence[Window], left: Sequence[int], total: Sequence[int],
                label: str) -> tuple[Window, ...]:
        """``windows`` with their padding: ``left`` before the input, ``total`` in all."""
        try:
            return tuple(w.with_padding(t, pl) for w, pl, t in zip(windows, left, total))
        except ConfigError as err:
            raise err.replace(layer=label, numbers={"padding": tuple(left)}) from None

    def explain_axis(self, i: int, n: int) -> list[str]:
        """The output-size arithmetic of axis ``i`` for input size ``n``, numbers substituted."""
        raise NotImplementedError

    def uncovered(self, i: int, n: int) -> int:
        """Rows/columns of the padded axis ``i`` after the last window: no window reads them."""
        return 0

    def explain_uncovered(self, i: int, n: int) -> str | None:
        """The arithmetic of :meth:`uncovered`, or ``None`` where nothing can be left over."""
        return None

    def padding_solutions(self, i: int, n: int, target: int) -> range:
        """Every TOTAL padding of axis ``i`` that turns size ``n`` into ``target``, this layer's
        other arguments (not its padding) kept, within what torch accepts: a ``range``."""
        raise NotImplementedError

    def padded_for(self, spatial: Sequence[int], targets: Sequence[int],
                   name_axes: bool = True) -> tuple["_WindowLayer", list[range]]:
        """This layer with the TOTAL padding per axis that turns input ``spatial`` into
        ``targets`` (the preferred one: :func:`~shapecalc.core.arithmetic.inverse.preferred_padding`),
        and every total that works, per axis. An axis that no padding serves is a
        :class:`ShapeError` saying why (``name_axes``: name the axis in it)."""
        solutions = [self.padding_solutions(i, n, t) for i, (n, t) in enumerate(zip(spatial, targets))]
        for i, found in enumerate(solutions):
            if not found:
                raise ShapeError(self._no_padding(i, spatial, targets[i], name_axes),
                                 layer=self.describe(), numbers={"target": targets[i]})
        return self.with_total_padding(tuple(preferred_padding(f) for f in solutions)), solutions

    def _no_padding(self, i: int, spatial: Sequence[int], target: int, name_axes: bool) -> str:
        where = f" on axis {AXIS_NAMES[self.ndim][i]}" if name_axes else ""
        try:
            at_zero: int | None = self.with_total_padding(0).output_shape((1, 1, *spatial))[2 + i]
        except (ShapeError, ConfigError):
            at_zero = None
        if self.padding_shrinks:
            return (f"no padding gives {target}{where}: with padding 0 the transposed convolution "
                    f"already gives {at_zero}, and padding only shrinks it")
        if at_zero is not None and at_zero > target:
            return (f"no padding gives {target}{where}: with p = 0 the output is already {at_zero} "
                    "and padding only makes it larger; use a larger stride or kernel")
        return (f"no padding gives {target}{where} within torch's limit for pooling (at most half "
                f"the kernel per side: {self.padding_limit(i)} for kernel {self._windows[i].k})")

    def with_total_padding(self, totals: int | Sequence[int]) -> "_WindowLayer":
        """This layer with a TOTAL padding per axis (both sides together), as the CLI counts it.

        An even total is torch's ``padding=total // 2``. An odd one is what padding the input
        first (``F.pad``, the odd pixel after, as ``padding='same'`` does) gives; torch's own
        ``padding=`` cannot express it, and a pool's half-kernel limit applies to the larger side.
        """
        totals = per_axis("padding", totals, self.ndim)
        left = tuple(t // 2 for t in totals)  # a negative total gives a negative side: refused
        same = all(x == left[0] for x in left)  # torch's int form where it fits, like a user writes
        layer = dataclasses.replace(self, padding=left[0] if same else left)  # type: ignore[type-var]
        if tuple(total_padding(x) for x in left) != totals:
            for i, total in enumerate(totals):
                layer._check_padding(i, total - left[i])
            layer._set_windows([w.with_total(t) for w, t in zip(layer._windows, totals)])
        return layer

    def _check_padding(self, i: int, per_side: int) -> None:
        limit = self.padding_limit(i)
        if limit is not None and per_side > limit:
            raise ConfigError(
                f"padding {per_side} is more than half the kernel: torch allows at most "
                f"{limit} for kernel {self._windows[i].k}",
                layer=self.describe(),
                axis=AXIS_NAMES[self.ndim][i],
                numbers={"padding": per_side, "kernel": self._windows[i].k, "limit": limit},
            )


def padded_input(layer: _WindowLayer, inp: Shape) -> Shape:
    """``inp`` padded as ``F.pad`` pads it before the layer (a padding mode other than zeros,
    TF ``'SAME'``): the copy that the layer then reads and keeps for its backward."""
    lead = len(inp) - layer.ndim
    return inp[:lead] + tuple(n + layer.window_at(i, n).p for i, n in enumerate(inp[lead:]))


def tf_same_line(layer: _WindowLayer, i: int, n: int) -> list[str]:
    """How much TF ``'SAME'`` padding axis ``i`` gets at size ``n`` (no line for a fixed one)."""
    w = layer.window(i)
    return [explain_tf_same(n, w.k, w.s, w.d)] if w.tf_same else []


def explain_axes(layer: _WindowLayer, spatial: tuple[int, ...]) -> list[str]:
    """Each axis's arithmetic under its name; an axis equal to an earlier one says so instead
    (a square input is explained once, not twice)."""
    lines: list[str] = []
    seen: dict[tuple, str] = {}
    for i, n in enumerate(spatial):
        key = (n, layer.window_at(i, n))
        axis = AXIS_NAMES[layer.ndim][i]
        if key in seen:
            lines.append(f"{axis}: same as {seen[key]}")
            continue
        seen[key] = axis
        body = layer.explain_axis(i, n)
        lines.append(f"{axis}: " + body[0])
        lines.extend("   " + b for b in body[1:])
    return lines


def _fmt(value: Any) -> str:
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        return compact(value)
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def spatial_dims(rank: int) -> range:
    """The axes of a ``rank``-D tensor that receptive fields follow: all after batch and channels."""
    return range(2, max(rank, 2))


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


def dropped_notes(dropped: list[tuple[str, int]]) -> list[Note]:
    """``[("H", 3), ("W", 3)]`` → one DROPS note, "drops 3 px (H, W)": one per distinct count."""
    by_count: dict[int, list[str]] = {}
    for axis, count in dropped:
        if count:
            by_count.setdefault(count, []).append(axis)
    if not by_count:  # most layers drop nothing: no import (a microsecond, every conv and pool)
        return []
    from shapecalc.core.notes import Note, NoteKind

    return [Note.of(NoteKind.DROPS, px=count, axes=tuple(axes)) for count, axes in by_count.items()]


def inferred_note(field: str, value: int) -> Note:
    """``in_channels=5 inferred``: a lazy argument taken from the input shape."""
    from shapecalc.core.notes import Note, NoteKind

    return Note.of(NoteKind.INFERRED, field=field, value=value)
