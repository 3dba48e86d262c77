"""Recurrent layers: ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` with torch's names and defaults.

A recurrent module is ONE node: ``forward`` returns ``(output, h_n)`` (``(output, (h_n, c_n))`` for
LSTM); the node's shape is the sequence output and :meth:`_Recurrent.extra_outputs` names the
final states, so a tracer can list them without counting the module again.

MACs: at every step, for every layer and direction, each weight and bias is used once per
sequence (the gate matmuls ``W_ih·x + b_ih`` and ``W_hh·h + b_hh``: 1 gate for RNN, 3 for GRU,
4 for LSTM, plus LSTM's projection ``W_hr·h``). That is parameters × steps × batch, the same
rule as Linear applied per position (and torchinfo's count for RNNs). The gates' element-wise
products, sigmoids and tanhs count 0, like every element-wise op.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shapecalc.core.errors import ConfigError, ShapeError
from shapecalc.core.arithmetic import FieldRule
from shapecalc.core.layers.base import FieldSteps, Layer, LayerKind, Shape, format_shape
from shapecalc.core.layers.sequence import SequenceDims, check_positive, check_probability, split_sequence


class _Recurrent(Layer):
    """What RNN, LSTM and GRU share; subclasses declare torch's fields in torch's order."""

    kind: ClassVar[LayerKind] = LayerKind.LINEAR
    arity: ClassVar[int] = 0  # the sequence, then optionally the initial state(s)
    gates: ClassVar[int] = 1
    #: names of the final states ``forward`` returns after the sequence output
    state_names: ClassVar[tuple[str, ...]] = ("h_n",)

    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    batch_first: bool
    dropout: float
    bidirectional: bool

    def __post_init__(self) -> None:
        check_positive(self, input_size=self.input_size, hidden_size=self.hidden_size,
                       num_layers=self.num_layers)
        check_probability(self, "dropout", self.dropout)

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Features of h at each step: ``proj_size`` for a projected LSTM, else ``hidden_size``."""
        return self.hidden_size

    def _sequence(self, inputs: tuple[Shape, ...]) -> SequenceDims:
        if not inputs:
            raise ShapeError("needs an input sequence", layer=self.describe())
        seq = split_sequence(self, inputs[0], self.batch_first)
        if seq.features != self.input_size:
            raise ShapeError(
                f"expects input_size {self.input_size} features, got {seq.features} "
                f"(input {format_shape(inputs[0])})",
                layer=self.describe(), numbers={"input_size": self.input_size, "features": seq.features})
        states = self.state_shapes(seq)
        given = inputs[1:]
        if len(given) > len(states):
            raise ShapeError(f"takes at most {len(states)} initial state(s), got {len(given)}",
                             layer=self.describe())
        for (name, want), shape in zip(states, given):
            if tuple(shape) != want:
                raise ShapeError(f"initial {name[0]}_0 must be {format_shape(want)}, got {format_shape(shape)}",
                                 layer=self.describe(), numbers={f"{name[0]}_0": shape})
        return seq

    def state_shapes(self, seq: SequenceDims) -> tuple[tuple[str, Shape], ...]:
        """``h_n`` is ``(D·num_layers, N, H_out)`` whatever ``batch_first`` says (no N unbatched)."""
        lead = self.directions * self.num_layers
        return tuple((name, (lead, size) if seq.batch is None else (lead, seq.batch, size))
                     for name, size in zip(self.state_names, self._state_sizes()))

    def _state_sizes(self) -> tuple[int, ...]:
        return (self.output_size,)

    def output_shape(self, *inputs: Shape) -> Shape:
        seq = self._sequence(inputs)
        return seq.shape(features=self.directions * self.output_size)

    def extra_outputs(self, *inputs: Shape) -> tuple[tuple[str, Shape], ...]:
        return self.state_shapes(self._sequence(inputs))

    def layer_params(self, layer_index: int) -> int:
        """Parameters of one direction of one layer: ``W_ih``, ``W_hh``, biases (and ``W_hr``)."""
        gh = self.gates * self.hidden_size
        inp = self.input_size if layer_index == 0 else self.directions * self.output_size
        count = gh * inp + gh * self.output_size + (2 * gh if self.bias else 0)
        if self.output_size != self.hidden_size:
            count += self.output_size * self.hidden_size
        return count

    def param_count(self, *inputs: Shape) -> int:
        # Every layer after the first has the same size: a closed form, so a hostile
        # num_layers (2**63 - 1) costs one multiplication, not 2**63 loop turns.
        rest = (self.num_layers - 1) * self.layer_params(1) if self.num_layers > 1 else 0
        return self.directions * (self.layer_params(0) + rest)

    def param_tensors(self, *inputs: Shape) -> int:
        """weight_ih, weight_hh (and two biases, and an LSTM's weight_hr) per layer and direction."""
        each = 2 + (2 if self.bias else 0) + (1 if self.output_size != self.hidden_size else 0)
        return self.directions * self.num_layers * each

    def mac_count(self, output: Shape, *inputs: Shape) -> int:
        seq = self._sequence(inputs)
        return self.param_count() * seq.length * seq.samples

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        """Both directions: every step reads the whole sequence; one direction reads the steps
        before it only, which the (N, C, …) axes a field follows do not describe."""
        return FieldRule.GLOBAL if self.bidirectional else FieldRule.UNKNOWN

    def describe(self) -> str:
        extra = [f"layers={self.num_layers}"] if self.num_layers != 1 else []
        extra += ["bidirectional"] if self.bidirectional else []
        if self.output_size != self.hidden_size:
            extra.append(f"proj={self.output_size}")
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            extra.append(self.nonlinearity)  # type: ignore[attr-defined]
        extra += [] if self.bias else ["bias=False"]
        return f"{self.type_name}({self.input_size}→{self.hidden_size}{''.join(', ' + e for e in extra)})"

    def explain(self, output: Shape, *inputs: Shape) -> list[str]:
        seq = self._sequence(inputs)
        lines = [
            f"{self.gates} gate(s) × hidden {self.hidden_size} per step, {seq.length} steps, "
            f"{self.num_layers} layer(s) × {self.directions} direction(s)",
            f"output features: {self.directions} × {self.output_size} = {self.directions * self.output_size}",
        ]
        lines += [f"{name}: {format_shape(shape)}" for name, shape in self.state_shapes(seq)]
        return lines


@dataclass(frozen=True)
class RNN(_Recurrent):
    input_size: int
    hidden_size: int
    num_layers: int = 1
    nonlinearity: str = "tanh"
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False

    gates: ClassVar[int] = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.nonlinearity not in ("tanh", "relu"):
            raise ConfigError(f"nonlinearity must be 'tanh' or 'relu', got {self.nonlinearity!r}",
                              layer=self.describe())


@dataclass(frozen=True)
class GRU(_Recurrent):
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False

    gates: ClassVar[int] = 3


@dataclass(frozen=True)
class LSTM(_Recurrent):
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False
    proj_size: int = 0

    gates: ClassVar[int] = 4
    state_names: ClassVar[tuple[str, ...]] = ("h_n", "c_n")

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.proj_size, bool) or not isinstance(self.proj_size, int) \
                or not 0 <= self.proj_size < self.hidden_size:
            raise ConfigError(
                f"proj_size must be an int from 0 to hidden_size - 1 ({self.hidden_size - 1}), "
                f"got {self.proj_size!r}", layer=self.describe(), numbers={"proj_size": self.proj_size})

    @property
    def output_size(self) -> int:
        return self.proj_size or self.hidden_size

    def _state_sizes(self) -> tuple[int, ...]:
        return (self.output_size, self.hidden_size)  # c_n keeps the unprojected hidden size


RECURRENT_LAYERS: tuple[type[Layer], ...] = (RNN, GRU, LSTM)
