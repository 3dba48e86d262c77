"""The roofline: device table, overrides, bounds and unknown MACs shown as unknown."""

from __future__ import annotations

import dataclasses

import pytest

import shapecalc
from shapecalc.core import memory, roofline
from shapecalc.core.errors import ArgumentError


@pytest.fixture(scope="module")
def alexnet():
    return shapecalc.analyze("alexnet")


def test_every_device_has_all_peaks_or_says_it_lacks_one():
    for dev in roofline.DEVICES.values():
        assert dev.bandwidth > 0
        assert set(dev.flops) == {"float32", "bfloat16", "float16"}
        assert dev.flops["float32"] > 0


def test_layers_are_bound_by_the_lower_roof(alexnet):
    report = alexnet.memory(batch=128)
    roof = roofline.roofline(memory.at_batch(alexnet, 128), report, roofline.device("a100"))
    for layer in roof.layers:
        assert layer.seconds >= layer.bytes / 2.039e12
        if layer.bound == "compute":
            assert layer.intensity >= roof.ridge
        else:
            assert layer.intensity is None or layer.intensity <= roof.ridge
    assert roof.train_seconds > 3 * roof.forward_seconds


def test_batch_raises_the_intensity_of_fully_connected_layers(alexnet):
    one = alexnet.memory(batch=1)
    many = alexnet.memory(batch=128)
    dev = roofline.device("h100")
    at1 = roofline.roofline(alexnet, one, dev)
    at128 = roofline.roofline(memory.at_batch(alexnet, 128), many, dev)
    assert at128.layers[14].intensity > 50 * at1.layers[14].intensity


def test_unknown_macs_stay_unknown(alexnet):
    report = alexnet.memory()
    hidden = dataclasses.replace(alexnet, records=[dataclasses.replace(r, macs=None) if r.name == "3"
                                                   else r for r in alexnet.records])
    roof = roofline.roofline(hidden, report, roofline.device("h100"))
    assert roof.layers[3].flops is None and roof.layers[3].seconds is None
    assert roof.forward_seconds is None and roof.train_seconds is None


def test_overrides_and_missing_arithmetic(alexnet):
    dev = roofline.custom(roofline.device("h100"), peak_flops=1e12, bandwidth=1e9)
    assert dev.peak("float32") == 1e12 and dev.bandwidth == 1e9
    with pytest.raises(ArgumentError) as err:
        roofline.custom(roofline.device("h100"), peak_flops=0)
    assert err.value.param == "peak_flops"
    t4 = roofline.roofline(alexnet, alexnet.memory(dtype="bfloat16"), roofline.device("t4"))
    assert all(layer.seconds is None for layer in t4.layers)  # Turing has no bfloat16
