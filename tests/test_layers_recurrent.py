"""RNN, GRU and LSTM against real torch modules: every output shape of a forward (the sequence
and the final states), ``sum(p.numel())``, MACs from torch's FLOP counter and torchinfo.

Tolerance zero: ``FlopCounterMode`` counts 2 FLOPs per multiply-accumulate of the gate matmuls
and nothing else, so shapecalc's MACs equal ``flops / 2`` plus the bias adds it counts (two
bias vectors of ``gates × hidden`` per step, layer and direction). oneDNN's fused LSTM kernel
is invisible to the counter, so it is switched off while counting.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shapecalc.core.errors import ConfigError, ShapeError
from shapecalc.core.layers import GRU, LSTM, RNN, layer_from_dict, layer_to_dict

torch = pytest.importorskip("torch")
torchinfo = pytest.importorskip("torchinfo")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

#: Each example runs a real forward under the FLOP counter: enough to cover the argument
#: combinations, capped so the CI profile's 500 does not add minutes.
TORCH_EXAMPLES = min(150, settings.default.max_examples)

pytestmark = [pytest.mark.filterwarnings("ignore:TF32 acceleration:UserWarning"),
              pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning")]


@st.composite
def recurrent_cases(draw, kinds=(RNN, GRU, LSTM), batched=None, batch_first=None):
    cls = draw(st.sampled_from(kinds))
    hidden = draw(st.integers(2, 6))
    kwargs = dict(num_layers=draw(st.integers(1, 3)), bias=draw(st.booleans()),
                  batch_first=draw(st.booleans()) if batch_first is None else batch_first,
                  bidirectional=draw(st.booleans()))
    if cls is LSTM:
        kwargs["proj_size"] = draw(st.integers(0, hidden - 1))
    if cls is RNN:
        kwargs["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    layer = cls(draw(st.integers(1, 6)), hidden, **kwargs)
    n, length = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    if not (draw(st.booleans()) if batched is None else batched):
        return layer, (length, layer.input_size)
    return layer, (n, length, layer.input_size) if layer.batch_first else (length, n, layer.input_size)


def flat_outputs(result) -> list[tuple[int, ...]]:
    """``(out, h_n)`` / ``(out, (h_n, c_n))`` → the shapes in order."""
    out, state = result
    states = state if isinstance(state, tuple) else (state,)
    return [tuple(out.shape)] + [tuple(s.shape) for s in states]


@settings(max_examples=TORCH_EXAMPLES)
@given(case=recurrent_cases())
def test_recurrent_equals_torch(case):
    layer, shape = case
    module = getattr(torch.nn, layer.type_name)(**layer.torch_kwargs())
    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
        result = module(torch.randn(shape))
    out = layer.output_shape(shape)
    assert flat_outputs(result) == [out] + [s for _, s in layer.extra_outputs(shape)]
    assert layer.param_count(shape) == sum(p.numel() for p in module.parameters())
    steps_x_batch = shape[0] * shape[1] if len(shape) == 3 else shape[0]
    bias_adds = (2 * layer.gates * layer.hidden_size * layer.num_layers * layer.directions
                 * steps_x_batch if layer.bias else 0)
    assert layer.mac_count(out, shape) == counter.get_total_flops() // 2 + bias_adds


# torchinfo counts every weight and bias of an RNN once per (batch, step) pair, which is
# shapecalc's rule; its product is of the first two output dims, right for batched input.
@settings(max_examples=30)
@given(case=recurrent_cases(batched=True))
def test_recurrent_macs_equal_torchinfo(case):
    layer, shape = case
    module = getattr(torch.nn, layer.type_name)(**layer.torch_kwargs())
    info = torchinfo.summary(module, input_size=shape, verbose=0, device="cpu")
    assert layer.mac_count(layer.output_shape(shape), shape) == info.total_mult_adds
    assert layer.param_count(shape) == info.total_params


def test_initial_states_are_checked_like_torch():
    layer = LSTM(4, 8, num_layers=2, batch_first=True)
    x, h0, c0 = (3, 5, 4), (2, 3, 8), (2, 3, 8)
    module = torch.nn.LSTM(**layer.torch_kwargs())
    out, _ = module(torch.randn(x), (torch.randn(h0), torch.randn(c0)))
    assert layer.output_shape(x, h0, c0) == tuple(out.shape)
    with pytest.raises(RuntimeError):
        module(torch.randn(x), (torch.randn(2, 5, 8), torch.randn(c0)))
    with pytest.raises(ShapeError, match=r"initial h_0 must be 2×3×8, got 2×5×8"):
        layer.output_shape(x, (2, 5, 8), c0)


def test_lstm_classifier_worked_example():
    """The issue's 2-layer LSTM(32, 64): 58,693 parameters with a Linear(64, 5) head; the LSTM
    alone is 58,368, applied once per step and sample."""
    layer = LSTM(32, 64, num_layers=2, batch_first=True)
    x = (1, 20, 32)
    assert layer.param_count(x) == 4 * 64 * (32 + 64 + 2) + 4 * 64 * (64 + 64 + 2) == 58_368
    assert layer.param_count(x) + 64 * 5 + 5 == 58_693
    assert layer.mac_count(layer.output_shape(x), x) == 58_368 * 20
    assert layer.extra_outputs(x) == (("h_n", (2, 1, 64)), ("c_n", (2, 1, 64)))


def test_refusals_name_the_argument():
    with pytest.raises(ConfigError, match="proj_size must be an int from 0 to hidden_size - 1"):
        LSTM(4, 8, proj_size=8)
    with pytest.raises(ConfigError, match="nonlinearity must be 'tanh' or 'relu'"):
        RNN(4, 8, nonlinearity="sigmoid")
    with pytest.raises(ConfigError, match="hidden_size must be a positive int"):
        GRU(4, 0)
    with pytest.raises(ShapeError, match="expects input_size 4 features, got 5"):
        GRU(4, 8).output_shape((7, 2, 5))
    with pytest.raises(ShapeError, match=r"\(L, N, E\) batched \(batch_first=False\)"):
        RNN(4, 8).output_shape((1, 7, 2, 4))


@given(case=recurrent_cases())
def test_spec_entries_round_trip(case):
    layer, _ = case
    assert layer_from_dict(layer_to_dict(layer)) == layer
