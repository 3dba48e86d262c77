"""Convolutions (1-D, 2-D, 3-D) and transposed convolutions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from shapecalc.core import arithmetic as ar
from shapecalc.core.errors import ConfigError, LayerError, Reason, ShapeError
from shapecalc.core.layers.fields import derived
from shapecalc.core.layers.base import (
    AXIS_NAMES, TF_SAME, FieldSteps, LayerKind, Shape, _WindowLayer, window_steps, batch_positions, compact,
    dropped_notes, explain_axes,
    inferred_note, one_of, padded_input, per_axis, spatial_of, tf_same_line,
)

if TYPE_CHECKING:  # notes are built in base.py; `shapecalc layer` never imports them
    from shapecalc.core.notes import Note

IntOrTuple = int | tuple[int, ...]


@dataclass(frozen=True)
class _ConvBase(_WindowLayer):
    in_channels: int | None
    out_channels: int
    kernel_size: IntOrTuple
    stride: IntOrTuple = 1
    padding: IntOrTuple | str = 0
    dilation: IntOrTuple = 1
    groups: int = 1
    bias: bool = True
    padding_mode: str = "zeros"

    ndim: ClassVar[int] = 2
    kind: ClassVar[LayerKind] = LayerKind.CONV
    inferred: ClassVar[tuple[str, ...]] = ("in_channels",)

    # One window per axis, built once: the graph pass asks for them per node.
    _windows: tuple[ar.Window, ...] = field(init=False, repr=False, compare=False)
    _kernel_volume: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        one_of(self, "padding_mode", ("zeros", "reflect", "replicate", "circular"))
        n = self.ndim
        k = per_axis("kernel_size", self.kernel_size, n)
        if not isinstance(self.kernel_size, int) and len(self.kernel_size) != n:
            # The kernel tuple becomes the weight's shape, so torch cannot expand a 1-tuple
            # as it does for stride/padding/dilation: a (3,) kernel makes a 1-D weight.
            raise ConfigError(
                f"kernel_size must be an int or a tuple of {n} ints, got {self.kernel_size!r}",
                layer=f"{type(self).__name__}(kernel_size={self.kernel_size})",
                numbers={"kernel_size": self.kernel_size},
            )
        s = per_axis("stride", self.stride, n)
        d = per_axis("dilation", self.dilation, n)
        windows = self._windows_of(self.describe(), k, s, d, output_padding=self._output_padding(n))
        if self.out_channels < 1 or (self.in_channels is not None and self.in_channels < 1):
            raise ConfigError(
                f"channels must be positive, got in={self.in_channels} out={self.out_channels}",
                layer=self.describe(),
            )
        if self.groups < 1:
            raise ConfigError(f"groups must be positive, got {self.groups}", layer=self.describe())
        if self.out_channels % self.groups:
            raise ConfigError(
                f"out_channels {self.out_channels} must be divisible by groups {self.groups}",
                layer=self.describe(),
                numbers={"out_channels": self.out_channels, "groups": self.groups},
            )
        if self.in_channels is not None and self.in_channels % self.groups:
            raise ConfigError(
                f"in_channels {self.in_channels} must be divisible by groups {self.groups}",
                layer=self.describe(),
                numbers={"in_channels": self.in_channels, "groups": self.groups},
            )
        if isinstance(self.padding, str):
            if self.padding in ("valid", TF_SAME):  # TF 'SAME': each window pads per input size
                left = total = (0,) * n
            elif self.padding == "same":
                if max(s) != 1:
                    raise ConfigError(
                        "padding='same' is not supported for strided convolutions "
                        f"(stride {compact(s)}); solve the padding for a target size instead",
                        layer=self.describe(),
                    )
                pairs = [ar.same_padding(kk, dd) for kk, dd in zip(k, d)]
                left = tuple(a for a, _ in pairs)
                total = tuple(a + b for a, b in pairs)
            else:
                raise ConfigError(
                    f"padding must be an int, a tuple, 'same', 'valid' or {TF_SAME!r}, got {self.padding!r}",
                    layer=self.describe(),
                )
        else:
            left = per_axis("padding", self.padding, n)
            total = tuple(ar.total_padding(x) for x in left)
        self._set_windows(self._padded(windows, left, total, self.describe()))

    def _output_padding(self, n: int) -> tuple[int, ...] | None:
        """A transposed convolution's ``output_padding`` per axis (``None``: not one)."""
        return None

    # ---- shared ----------------------------------------------------------------------
    def _channels_in(self, inp: Shape) -> int:
        c, _, _ = spatial_of(self, inp, self.ndim)
        expected = self.in_channels
        if expected is not None and c != expected:
            raise ShapeError(
                f"expects {expected} input channels, got {c} (input {'×'.join(map(str, inp))})",
                layer=self.describe(),
                numbers={"expected_channels": expected, "channels": c}, reason=Reason.CHANNELS,
            )
        if c % self.groups:
            raise ShapeError(
                f"input channels {c} are not divisible by groups {self.groups}",
                layer=self.describe(),
                numbers={"channels": c, "groups": self.groups},
            )
        return c

    def resolve(self, *inputs: Shape) -> "_WindowLayer":
        if self.in_channels is not None:
            return self
        return derived(self, in_channels=self._channels_in(inputs[0]))

    def _weights(self, c_in: int) -> int:
        return self.out_channels * (c_in // self.groups) * self._kernel_volume

    def param_count(self, *inputs: Shape) -> int:
        c_in = self.in_channels if self.in_channels is not None else self._channels_in(inputs[0])
        return self._weights(c_in) + (self.out_channels if self.bias else 0)

    def describe(self) -> str:
        windows = getattr(self, "_windows", None)
        if windows is None:  # called from __post_init__ before normalisation
            return f"{type(self).__name__}(kernel_size={self.kernel_size})"
        parts = [f"{'?' if self.in_channels is None else self.in_channels}→{self.out_channels}"]
        parts.append(f"k={compact(tuple(w.k for w in windows))}")
        if max(w.s for w in windows) != 1:
            parts.append(f"s={compact(tuple(w.s for w in windows))}")
        if isinstance(self.padding, str):
            parts.append(f"p={self.padding}")
        elif max(w.p_left for w in windows) != 0:
            parts.append(f"p={compact(tuple(w.p_left for w in windows))}")
        if max(w.d for w in windows) != 1:
            parts.append(f"d={compact(tuple(w.d for w in windows))}")
        if self.groups != 1:
            parts.append(f"g={self.groups}")
        if not self.bias:
            parts.append("bias=False")
        return f"{self.type_name}({', '.join(parts)})"

    def _axis(self, i: int) -> str:
        return AXIS_NAMES[self.ndim][i]

    def saved(self, grad, output: Shape, *inputs: Shape):
        """The input (the weight, also kept, is a parameter). A padding mode other than zeros
        pads a copy first (``F.pad``), and that copy is what the convolution keeps."""
        from shapecalc.core.layers.saved import INPUT, new  # `shapecalc layer` loads conv alone

        if not grad.active:
            return ()
        if self.padding_mode == "zeros" and self.padding != TF_SAME:
            return (INPUT,)
        return (new(padded_input(self, inputs[0])),)

    def param_tensors(self, *inputs: Shape) -> int:
        return 2 if self.bias else 1


class _ConvNd(_ConvBase):  # no new fields: _ConvBase's generated methods serve (and import faster)
    def output_shape(self, *inputs: Shape) -> Shape:
        inp = inputs[0]
        self._channels_in(inp)
        _, spatial, batched = spatial_of(self, inp, self.ndim)
        out = []
        for i, n in enumerate(spatial):
            w = self._windows[i].at(n)
            try:
                out.append(ar.window_conv_size(n, w.k, w.s, w.p, w.d))
            except LayerError as err:
                raise err.replace(layer=self.describe(), axis=self._axis(i)) from None
        head = (inp[0], self.out_channels) if batched else (self.out_channels,)
        return head + tuple(out)

    def mac_count(self, output: Shape, *inputs: Shape) -> int:
        # torchinfo's convention: every weight and bias once per output position and sample.
        return self.param_count(*inputs) * batch_positions(output, self.ndim)

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        return window_steps(self, spatial_of(self, inputs[0], self.ndim)[1])

    def notes(self, output: Shape, *inputs: Shape) -> list[Note]:
        _, spatial, _ = spatial_of(self, inputs[0], self.ndim)
        notes = dropped_notes([(self._axis(i), self.uncovered(i, n)) for i, n in enumerate(spatial)])
        if self.in_channels is None:
            notes.append(inferred_note("in_channels", self._channels_in(inputs[0])))
        return notes

    def explain(self, output: Shape, *inputs: Shape) -> list[str]:
        _, spatial, _ = spatial_of(self, inputs[0], self.ndim)
        return explain_axes(self, spatial)

    # ---- per-axis answers (_WindowLayer) ----------------------------------------------
    def explain_axis(self, i: int, n: int) -> list[str]:
        w = self.window_at(i, n)
        return tf_same_line(self, i, n) + ar.explain_conv(n, w.k, w.s, w.p, w.d)

    def uncovered(self, i: int, n: int) -> int:
        w = self.window_at(i, n)
        return ar.window_dropped_pixels(n, w.k, w.s, w.p, w.d)

    def explain_uncovered(self, i: int, n: int) -> str:
        w = self.window_at(i, n)
        return ar.explain_dropped(n, w.k, w.s, w.p, w.d)

    def padding_solutions(self, i: int, n: int, target: int) -> range:
        w = self._windows[i]
        return ar.solve_padding(n, w.k, w.s, target, w.d)


class Conv1d(_ConvNd):
    ndim: ClassVar[int] = 1


class Conv2d(_ConvNd):
    ndim: ClassVar[int] = 2


class Conv3d(_ConvNd):
    ndim: ClassVar[int] = 3


@dataclass(frozen=True)
class CondConv2d(_ConvNd):
    """A conditionally parameterised convolution (timm's ``CondConv2d``, CondConv, Yang et al.
    2019): each sample's kernel is its own mix of ``num_experts`` kernels, ``routing @ experts``,
    so it takes two inputs, the (N, C, H, W) map and the (N, num_experts) routing weights.

    Sizes are a convolution's. Parameters are every expert's. MACs are the mix (a matmul of
    N × num_experts by num_experts × one kernel, bias included) plus each sample's convolution,
    counted as :class:`Conv2d` counts. The field is the convolution's window; the routing
    weights, computed from a pooled map, make it global (``merge_fields``).
    """

    num_experts: int = 4

    arity: ClassVar[int] = 0  # the map and the routing weights (fx maps a 1-input call otherwise)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_experts < 1:
            raise ConfigError(f"num_experts must be positive, got {self.num_experts}",
                              layer=self.describe(), numbers={"num_experts": self.num_experts})

    def _inputs(self, inputs: tuple[Shape, ...]) -> Shape:
        """The map, once the routing weights are checked to be (N, num_experts) for its N."""
        if len(inputs) != 2 or len(inputs[0]) != 4:
            raise ShapeError("takes a 4-D (N, C, H, W) map and (N, num_experts) routing weights, got "
                             + ", ".join("×".join(map(str, s)) for s in inputs),
                             layer=self.describe(), numbers={"inputs": len(inputs)})
        x, routing = inputs
        if tuple(routing) != (x[0], self.num_experts):
            raise ShapeError(f"routing weights must be {x[0]}×{self.num_experts} (N × num_experts), "
                             f"got {'×'.join(map(str, routing))}", layer=self.describe(),
                             numbers={"routing": tuple(routing)})
        return x

    def output_shape(self, *inputs: Shape) -> Shape:
        return super().output_shape(self._inputs(inputs))

    def _kernel(self, inputs: tuple[Shape, ...]) -> int:
        """One sample's kernel: its weights and bias."""
        c_in = self.in_channels if self.in_channels is not None else self._channels_in(inputs[0])
        return self._weights(c_in) + (self.out_channels if self.bias else 0)

    def param_count(self, *inputs: Shape) -> int:
        return self.num_experts * self._kernel(inputs)

    def mac_count(self, output: Shape, *inputs: Shape) -> int:
        kernel = self._kernel(inputs)
        mix = output[0] * self.num_experts * kernel
        return mix + kernel * batch_positions(output, self.ndim)

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        return super().field_steps(inputs[0])

    def saved(self, grad, output: Shape, *inputs: Shape):
        return None  # the mixed kernels and the reshaped map: no rule, so measured or unknown

    def describe(self) -> str:
        return f"{super().describe()[:-1]}, experts={self.num_experts})"


@dataclass(frozen=True)
class _ConvTransposeNd(_ConvBase):
    output_padding: IntOrTuple = 0
    padding_shrinks: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if isinstance(self.padding, str):
            raise ConfigError("transposed convolutions take an int or tuple padding, not a string")
        super().__post_init__()

    def _output_padding(self, n: int) -> tuple[int, ...]:
        return per_axis("output_padding", self.output_padding, n)

    def output_shape(self, *inputs: Shape) -> Shape:
        inp = inputs[0]
        self._channels_in(inp)
        _, spatial, batched = spatial_of(self, inp, self.ndim)
        out = []
        for i, n in enumerate(spatial):
            w = self._windows[i]
            try:
                out.append(ar.transposed_conv_output_size(n, w.k, w.s, w.p, w.d, w.output_padding))
            except LayerError as err:
                raise err.replace(layer=self.describe(), axis=self._axis(i)) from None
        head = (inp[0], self.out_channels) if batched else (self.out_channels,)
        return head + tuple(out)

    def _weights(self, c_in: int) -> int:
        return c_in * (self.out_channels // self.groups) * self._kernel_volume

    def mac_count(self, output: Shape, *inputs: Shape) -> int:
        # Each input position scatters through every weight once (exact count; torchinfo
        # multiplies by OUTPUT positions instead, which overcounts strided layers ~stride^d).
        inp = inputs[0]
        c_in = self.in_channels if self.in_channels is not None else self._channels_in(inp)
        weights = self._weights(c_in) * batch_positions(inp, self.ndim)
        bias = self.out_channels * batch_positions(output, self.ndim) if self.bias else 0
        return weights + bias

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        return tuple(w.transposed_step() for w in self._windows)

    def explain(self, output: Shape, *inputs: Shape) -> list[str]:
        _, spatial, _ = spatial_of(self, inputs[0], self.ndim)
        return explain_axes(self, spatial)

    # ---- per-axis answers (_WindowLayer); every input pixel is scattered, none left over ---
    def explain_axis(self, i: int, n: int) -> list[str]:
        w = self._windows[i]
        return ar.explain_transposed(n, w.k, w.s, w.p, w.d, w.output_padding)

    def padding_solutions(self, i: int, n: int, target: int) -> range:
        w = self._windows[i]
        return ar.solve_transposed_padding(n, w.k, w.s, target, w.d, w.output_padding)

    def notes(self, output: Shape, *inputs: Shape) -> list[Note]:
        if self.in_channels is None:
            return [inferred_note("in_channels", self._channels_in(inputs[0]))]
        return []


class ConvTranspose1d(_ConvTransposeNd):
    ndim: ClassVar[int] = 1


class ConvTranspose2d(_ConvTransposeNd):
    ndim: ClassVar[int] = 2


class ConvTranspose3d(_ConvTransposeNd):
    ndim: ClassVar[int] = 3
