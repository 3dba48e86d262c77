"""Pooling: max and average (floor or ceil mode) and adaptive pooling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from shapecalc.core import arithmetic as ar
from shapecalc.core.arithmetic import AxisStep
from shapecalc.core.errors import ConfigError, LayerError, Reason, ShapeError
from shapecalc.core.layers.base import (
    AXIS_NAMES, TF_SAME, FieldSteps, Layer, LayerKind, Shape, _WindowLayer, window_steps, at_most, compact,
    dropped_notes, explain_axes,
    padded_input, per_axis, spatial_of, tf_same_line,
)

#: Largest adaptive-pooling output per axis (a window list of this length is still cheap).
MAX_ADAPTIVE_OUTPUT = 65_536

if TYPE_CHECKING:  # notes are built on demand; `shapecalc layer` never imports them
    from shapecalc.core.notes import Note

IntOrTuple = int | tuple[int, ...]


@dataclass(frozen=True)
class _PoolNd(_WindowLayer):
    kernel_size: IntOrTuple
    stride: IntOrTuple | None = None
    padding: IntOrTuple | str = 0  # or TF_SAME

    ndim: ClassVar[int] = 2
    kind: ClassVar[LayerKind] = LayerKind.POOL

    # One window per axis, built once: the graph pass asks for them per node.
    _windows: tuple[ar.Window, ...] = field(init=False, repr=False, compare=False)
    _kernel_volume: int = field(init=False, repr=False, compare=False)

    def _dilation(self) -> tuple[int, ...]:
        return (1,) * self.ndim

    def padding_limit(self, i: int) -> int:
        """Torch's largest allowed per-side padding: half the UNDILATED kernel, for every pool.

        max_pool2d/3d also compare with half the dilated span (``pooling_output_shape``), but
        their ``pool2d/3d_shape_check`` demands ``k // 2 >= pad`` as well, which is stricter.
        """
        return self._windows[i].k // 2

    def __post_init__(self) -> None:
        n = self.ndim
        k = per_axis("kernel_size", self.kernel_size, n)
        s = k if self.stride is None else per_axis("stride", self.stride, n)
        if isinstance(self.padding, str) and self.padding != TF_SAME:
            raise ConfigError(f"padding must be an int, a tuple or {TF_SAME!r}, got {self.padding!r}",
                              layer=self._short(), numbers={"padding": self.padding})
        # TF 'SAME' pads with F.pad before the pool, so torch's half-kernel limit is not met.
        pl = (0,) * n if self.padding == TF_SAME else per_axis("padding", self.padding, n)
        windows = self._windows_of(self._short(), k, s, self._dilation(), ceil_mode=self._ceil())
        self._set_windows(self._padded(windows, pl, tuple(ar.total_padding(x) for x in pl), self._short()))
        for i in range(n):
            self._check_padding(i, pl[i])
        if getattr(self, "divisor_override", None) == 0:
            raise ConfigError("divisor_override must not be zero", layer=self.describe(),
                              numbers={"divisor_override": 0})

    def _padded_copy(self, inp: Shape):
        """What the pool reads and keeps: the input, or F.pad's copy of it (TF 'SAME')."""
        from shapecalc.core.layers.saved import INPUT, new  # `shapecalc layer`: pool alone

        return new(padded_input(self, inp)) if self.padding == TF_SAME else INPUT

    def _short(self) -> str:
        return f"{type(self).__name__}(kernel_size={self.kernel_size})"

    def _ceil(self) -> bool:
        return bool(getattr(self, "ceil_mode", False))

    def _check_input(self, spatial: tuple[int, ...]) -> None:
        """Extra input checks some torch pools make beyond the output formula (none by default)."""

    def output_shape(self, *inputs: Shape) -> Shape:
        inp = inputs[0]
        _, spatial, _ = spatial_of(self, inp, self.ndim)
        self._check_input(spatial)
        out = []
        for i, n in enumerate(spatial):
            w = self._windows[i].at(n)
            try:
                out.append(ar.pool_output_size(n, w.k, w.s, w.p, w.d, w.ceil_mode))
            except LayerError as err:
                raise err.replace(layer=self.describe(), axis=AXIS_NAMES[self.ndim][i]) from None
        return inp[: len(inp) - self.ndim] + tuple(out)

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        return window_steps(self, spatial_of(self, inputs[0], self.ndim)[1])

    # ---- per-axis answers (_WindowLayer) ----------------------------------------------
    def explain_axis(self, i: int, n: int) -> list[str]:
        w = self.window_at(i, n)
        return tf_same_line(self, i, n) + ar.explain_pool(n, w.k, w.s, w.p, w.d, w.ceil_mode)

    def uncovered(self, i: int, n: int) -> int:
        # Ceil mode included: a last window torch drops leaves what it would have read unread.
        w = self.window_at(i, n)
        return ar.dropped_pixels(n, w.k, w.s, w.p, w.d, w.ceil_mode)

    def explain_uncovered(self, i: int, n: int) -> str:
        w = self.window_at(i, n)
        return ar.explain_dropped(n, w.k, w.s, w.p, w.d, w.ceil_mode)

    def padding_solutions(self, i: int, n: int, target: int) -> range:
        w = self._windows[i]
        return ar.solve_pool_padding(n, w.k, w.s, target, w.d, w.ceil_mode,
                                     max_total=ar.total_padding(self.padding_limit(i)))

    def notes(self, output: Shape, *inputs: Shape) -> list[Note]:
        _, spatial, _ = spatial_of(self, inputs[0], self.ndim)
        return dropped_notes([(AXIS_NAMES[self.ndim][i], self.uncovered(i, n)) for i, n in enumerate(spatial)])

    def explain(self, output: Shape, *inputs: Shape) -> list[str]:
        _, spatial, _ = spatial_of(self, inputs[0], self.ndim)
        return explain_axes(self, spatial)

    def describe(self) -> str:
        windows = getattr(self, "_windows", None)
        if windows is None:
            return self._short()
        k = tuple(w.k for w in windows)
        parts = [f"k={compact(k)}"]
        if any(w.s != w.k for w in windows):
            parts.append(f"s={compact(tuple(w.s for w in windows))}")
        if self.padding == TF_SAME:
            parts.append(f"p={TF_SAME}")
        elif max(w.p_left for w in windows):
            parts.append(f"p={compact(tuple(w.p_left for w in windows))}")
        if max(w.d for w in windows) != 1:
            parts.append(f"d={compact(tuple(w.d for w in windows))}")
        if self._ceil():
            parts.append("ceil")
        return f"{self.type_name}({', '.join(parts)})"


@dataclass(frozen=True)
class _MaxPoolNd(_PoolNd):
    dilation: IntOrTuple = 1
    return_indices: bool = False
    ceil_mode: bool = False

    def _dilation(self) -> tuple[int, ...]:
        return per_axis("dilation", self.dilation, self.ndim)

    def saved(self, grad, output: Shape, *inputs: Shape):
        return _input_and_indices(grad, output, self._padded_copy(inputs[0]))


@dataclass(frozen=True)
class _AvgPoolNd(_PoolNd):
    ceil_mode: bool = False
    count_include_pad: bool = True

    def saved(self, grad, output: Shape, *inputs: Shape):
        return (self._padded_copy(inputs[0]),) if grad.active else ()


class MaxPool1d(_MaxPoolNd):
    ndim: ClassVar[int] = 1


class MaxPool2d(_MaxPoolNd):
    ndim: ClassVar[int] = 2


class MaxPool3d(_MaxPoolNd):
    ndim: ClassVar[int] = 3


class AvgPool1d(_AvgPoolNd):
    ndim: ClassVar[int] = 1


@dataclass(frozen=True)
class AvgPool2d(_AvgPoolNd):
    ndim: ClassVar[int] = 2
    divisor_override: int | None = None


@dataclass(frozen=True)
class AvgPool3d(_AvgPoolNd):
    ndim: ClassVar[int] = 3
    divisor_override: int | None = None

    def padding_solutions(self, i: int, n: int, target: int) -> range:
        return super().padding_solutions(i, n, target) if n >= self._windows[i].k else range(0)

    def _check_input(self, spatial: tuple[int, ...]) -> None:
        # avg_pool3d alone checks the UNPADDED input against the kernel (pool3d_shape_check
        # with check_input_size), so padding cannot rescue a too-small input as in 2-D.
        for i, (n, w) in enumerate(zip(spatial, self._windows)):
            if 1 <= n < w.k:
                raise ShapeError(
                    f"input size {n} is smaller than the kernel {w.k} "
                    "(avg_pool3d does not count padding here)",
                    layer=self.describe(),
                    axis=AXIS_NAMES[3][i],
                    numbers={"input": n, "kernel": w.k}, reason=Reason.TOO_SMALL,
                )


@dataclass(frozen=True)
class _AdaptivePoolNd(Layer):
    output_size: int | None | tuple[int | None, ...]

    ndim: ClassVar[int] = 2
    kind: ClassVar[LayerKind] = LayerKind.POOL

    def __post_init__(self) -> None:
        self._targets()  # refuse a malformed output_size up front (torch does at the first forward)
        # Receptive fields and explanations list every window: bound them (one line, not gigabytes).
        at_most(self, "output_size", MAX_ADAPTIVE_OUTPUT, " per axis (shapecalc lists every window)")

    def _targets(self) -> tuple[int | None, ...]:
        # Torch: ``None`` keeps an axis only INSIDE a 2-D/3-D tuple; a bare ``None`` and a
        # 1-D ``(None,)`` are refused (adaptive_*_pool1d takes ints only).
        if isinstance(self.output_size, int):
            return (self.output_size,) * self.ndim
        values = None if self.output_size is None else tuple(self.output_size)
        if values is None or len(values) != self.ndim or (self.ndim == 1 and None in values):
            keep = " (None keeps an axis, in 2-D and 3-D only)" if self.ndim > 1 else ""
            raise ConfigError(
                f"output_size must be an int or a tuple of {self.ndim}{keep}, got {self.output_size!r}",
                layer=f"{self.type_name}(output_size={self.output_size!r})",
                numbers={"output_size": self.output_size},
            )
        return values

    def output_shape(self, *inputs: Shape) -> Shape:
        inp = inputs[0]
        _, spatial, _ = spatial_of(self, inp, self.ndim)
        out = []
        for i, (n, t) in enumerate(zip(spatial, self._targets())):
            try:
                out.append(ar.adaptive_output_size(n, t))
            except LayerError as err:
                raise err.replace(layer=self.describe(), axis=AXIS_NAMES[self.ndim][i]) from None
        return inp[: len(inp) - self.ndim] + tuple(out)

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        _, spatial, _ = spatial_of(self, inputs[0], self.ndim)
        return tuple(AxisStep.adaptive(n, n if t is None else t) for n, t in zip(spatial, self._targets()))

    def notes(self, output: Shape, *inputs: Shape) -> list[Note]:
        _, spatial, _ = spatial_of(self, inputs[0], self.ndim)
        from shapecalc.core.notes import Note, NoteKind

        notes = []
        for n, t in zip(spatial, self._targets()):
            if t is not None and t > n:
                notes.append(Note.of(NoteKind.UPSAMPLES, size=n, target=t))
                break
        return notes

    def explain(self, output: Shape, *inputs: Shape) -> list[str]:
        _, spatial, _ = spatial_of(self, inputs[0], self.ndim)
        lines = []
        for i, (n, t) in enumerate(zip(spatial, self._targets())):
            t = n if t is None else t
            if t:
                windows = ar.adaptive_windows(n, t)
                sizes = sorted({e - s for s, e in windows})
                lines.append(
                    f"{AXIS_NAMES[self.ndim][i]}: adaptive {n} → {t}: windows "
                    f"[floor(i·{n}/{t}), ceil((i+1)·{n}/{t})) of size {'/'.join(map(str, sizes))}"
                )
        return lines

    def describe(self) -> str:
        return f"{self.type_name}({compact(self._targets()) if None not in self._targets() else self.output_size})"


def _input_and_indices(grad, output: Shape, read=None):
    """Max pooling keeps what it read (its input, or ``read``) and the argmax of every window
    (int64, output-sized)."""
    from shapecalc.core.layers.saved import INPUT, new

    return (INPUT if read is None else read, new(output, "int64")) if grad.active else ()


class _AdaptiveAvgPoolNd(_AdaptivePoolNd):
    def saved(self, grad, output: Shape, *inputs: Shape):
        """A 1×1 (×1) output is computed as ``mean`` (nothing kept); others keep the input."""
        from shapecalc.core.layers.saved import keeps_input_if_active

        if all(n == 1 for n in output[len(output) - self.ndim:]):
            return ()
        return keeps_input_if_active(grad)


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    ndim: ClassVar[int] = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    ndim: ClassVar[int] = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    ndim: ClassVar[int] = 3


@dataclass(frozen=True)
class _AdaptiveMaxPoolNd(_AdaptivePoolNd):
    return_indices: bool = False

    def saved(self, grad, output: Shape, *inputs: Shape):
        return _input_and_indices(grad, output)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    ndim: ClassVar[int] = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    ndim: ClassVar[int] = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    ndim: ClassVar[int] = 3

