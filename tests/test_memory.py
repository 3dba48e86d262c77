"""The memory account on the pure-Python engine (no torch): what each layer kind keeps, shared
storages counted once, optimizer state, batch scaling, peaks, and arguments refused by name.
The comparison with real autograd is tests/test_memory_torch.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shapecalc
from shapecalc.core import memory
from shapecalc.core.errors import ArgumentError
from shapecalc.core.layers import Conv2d, Dropout, Linear, MaxPool2d, ReLU
from shapecalc.core.layers.saved import INPUT, OUTPUT, Backward, Kept


@pytest.fixture(scope="module")
def alexnet():
    return shapecalc.analyze("alexnet")


def layer(report, name):
    return next(m for m in report.layers if m.name == name)


def test_alexnet_layers_keep_what_autograd_keeps(alexnet):
    report = alexnet.memory(batch=8, device="laptop-cpu")
    recs = {r.name: r for r in alexnet.records}
    from math import prod

    conv, relu, pool = layer(report, "0"), layer(report, "1"), layer(report, "2")
    assert conv.saved == 8 * prod(recs["0"].input_shape[1:]) * 4  # the conv keeps its input
    assert relu.saved == 8 * prod(recs["1"].output_shape[1:]) * 4  # the ReLU its output
    # max-pool: its input is the ReLU's output (counted there), plus int64 indices
    assert pool.saved == 2 * 8 * prod(recs["2"].output_shape[1:]) * 4
    # the conv after a ReLU keeps the ReLU's output: one storage, counted once
    assert layer(report, "3").saved == 8 * prod(recs["3"].input_shape[1:]) * 4
    assert layer(report, "8").saved == 0
    assert report.saved_activations == sum(m.saved for m in report.layers)


def test_rules_name_inputs_outputs_and_new_tensors():
    grad = Backward((True,), weights_grad=True)
    assert Conv2d(3, 8, 3).saved(grad, (1, 8, 6, 6), (1, 3, 8, 8)) == (INPUT,)
    assert ReLU().saved(grad, (1, 8), (1, 8)) == (OUTPUT,)
    assert ReLU().saved(Backward((False,)), (1, 8), (1, 8)) == ()  # nothing records it
    kept = MaxPool2d(2).saved(grad, (1, 3, 4, 4), (1, 3, 8, 8))
    assert kept[0] == INPUT and kept[1].kept is Kept.NEW and kept[1].dtype == "int64"
    mask = Dropout(0.5).saved(grad, (4, 10), (4, 10))[0]
    assert mask.kept is Kept.NEW and mask.dtype is None  # CPU: in the activations' type
    assert Dropout(0.5).saved(Backward((True,), cuda=True), (4, 10), (4, 10))[0].dtype == "bool"
    assert Dropout(0.5).saved(Backward((True,), training=False), (4, 10), (4, 10)) == ()
    assert Linear(4, 2).saved(Backward((True,), weights_grad=False), (1, 2), (1, 4)) == ()


@pytest.mark.parametrize("optimizer,copies,step", [("sgd", 0, 0), ("momentum", 1, 0),
                                                   ("adam", 2, 4), ("adamw", 2, 4)])
def test_optimizer_state_is_copies_of_the_gradients_and_a_step_per_tensor(alexnet, optimizer,
                                                                          copies, step):
    report = alexnet.memory(optimizer=optimizer)
    tensors = sum(r.layer.param_tensors() for r in alexnet.records if r.params)
    assert report.parameters == report.gradients == alexnet.total_params * 4
    assert report.optimizer_state == copies * report.gradients + step * tensors


def test_half_precision_and_autocast(alexnet):
    fp32 = alexnet.memory(batch=4)
    bf16 = alexnet.memory(batch=4, dtype="bfloat16")
    amp = alexnet.memory(batch=4, amp=True)
    assert bf16.parameters * 2 == fp32.parameters
    # floats halve; max-pool indices stay int64
    assert fp32.saved_activations / 2 < bf16.saved_activations < fp32.saved_activations
    assert amp.parameters == fp32.parameters  # float32 master weights
    # autocast keeps a bfloat16 copy of every weight: at batch 4 more than the activations
    assert amp.saved_activations > amp.parameters / 2


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4096))
def test_saved_activations_scale_with_the_batch(batch):
    """AlexNet (d2l) keeps nothing per channel: every saved tensor is per sample."""
    analysis = shapecalc.analyze("alexnet")
    one = analysis.memory(batch=1)
    many = analysis.memory(batch=batch)
    assert many.saved_activations == batch * one.saved_activations
    assert many.parameters == one.parameters
    assert many.peak_train >= many.parameters + many.optimizer_state + many.saved_activations


def test_peaks_hold_their_parts(alexnet):
    report = alexnet.memory(batch=64)
    persistent = report.parameters + report.optimizer_state
    assert report.peak_train >= persistent + report.gradients
    assert report.peak_eval >= report.parameters
    assert report.peak_eval < report.peak_train


def test_eval_mode_keeps_no_dropout_mask(alexnet):
    train = alexnet.memory(batch=2)
    evaluation = alexnet.memory(batch=2, mode="eval")
    assert evaluation.saved_activations < train.saved_activations


def test_json_keys(alexnet):
    data = alexnet.memory(batch=2).to_dict()
    assert set(data["memory"]) >= {"parameters", "gradients", "optimizer_state",
                                   "saved_activations", "peak_train", "peak_eval"}
    assert {"batch", "dtype", "optimizer"} <= set(data)
    assert set(data["layers"][0]["memory"]) == {"saved", "params", "grads", "optimizer"}


@pytest.mark.parametrize("kwargs,param", [
    ({"batch": 0}, "batch"), ({"batch": -3}, "batch"), ({"batch": 2**40}, "batch"),
    ({"batch": 2.5}, "batch"), ({"optimizer": "lion"}, "optimizer"), ({"dtype": "int8"}, "dtype"),
    ({"mode": "test"}, "mode"), ({"device": "tpu"}, "device"),
    ({"amp": True, "dtype": "bfloat16"}, "amp")])
def test_bad_arguments_name_the_parameter(alexnet, kwargs, param):
    with pytest.raises(ArgumentError) as err:
        alexnet.memory(**kwargs)
    assert err.value.param == param


def test_a_layer_without_a_rule_is_unknown_not_zero():
    from shapecalc import blocks
    from shapecalc.core.layers import LSTM

    spec = blocks.Sequential(LSTM(8, 16, batch_first=True))
    report = shapecalc.analyze(spec, (2, 5, 8)).memory()
    assert report.unknown and report.saved_activations is None and report.peak_train is None
    assert report.layers[0].saved is None
    assert report.parameters > 0  # what is known is still said


def test_the_largest_batch_is_quick_and_exact(alexnet):
    report = alexnet.memory(batch=memory.MAX_BATCH)
    assert report.saved_activations == memory.MAX_BATCH * alexnet.memory(batch=1).saved_activations


def test_what_dominates_alexnet_answers_d2ls_three_questions():
    """d2l's AlexNet exercise: the memory footprint (the first fully connected layer holds most
    weights), the computation (convolutions), the bandwidth (batch 1 versus 128)."""
    from shapecalc.output.memory import view

    lines = view(shapecalc.analyze("alexnet"), batch=128, device="a100").dominates()
    text = "\n".join(lines)
    assert "parameters: 14 (Linear) holds 56 %" in text
    assert "conv layers do 9" in text  # 95 %
    at_one = next(x for x in lines if x.startswith("bandwidth at batch 1:"))
    at_128 = next(x for x in lines if x.startswith("bandwidth at batch 128:"))
    assert "14 (Linear)" in at_one and "14 (Linear)" not in at_128


def test_a_memory_report_displays_itself(alexnet):
    report = alexnet.memory(batch=8)
    assert report.text().startswith("alexnet: batch 8, float32, adam")
    html = report._repr_html_()
    computing = sum(1 for r in alexnet.records if r.macs)  # zero FLOPs sit off a log axis
    assert "Training memory and roofline" in html and html.count("<circle") == computing
    assert report.svg().startswith("<svg")
