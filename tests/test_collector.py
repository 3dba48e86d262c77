"""The cyclic collector is paused while a model is read, and always left as it was found."""

from __future__ import annotations

import gc

import pytest

import shapecalc
from shapecalc.core.collector import paused_collector


@pytest.fixture(autouse=True)
def collector_back_on():
    yield
    gc.enable()


def test_pause_and_restore():
    gc.enable()
    with paused_collector():
        assert not gc.isenabled()
        with paused_collector():  # nested: still paused, and the inner exit does not restart it
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_caller_stays_off():
    gc.disable()
    with paused_collector():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_restored_when_the_work_inside_fails():
    gc.enable()
    with pytest.raises(RuntimeError):
        with paused_collector():
            raise RuntimeError("boom")
    assert gc.isenabled()


def test_young_objects_are_collected_when_the_pause_ends():
    # The cycles made during the pause are freed at its end, not left to whoever allocates next.
    gc.enable()
    gc.collect()
    with paused_collector():
        for _ in range(2000):
            cycle: list = []
            cycle.append(cycle)
        assert gc.get_count()[0] >= 2000
    assert gc.get_count()[0] < 100


@pytest.mark.parametrize("was_enabled", [True, False])
def test_analysis_leaves_the_collector_as_it_was(was_enabled):
    (gc.enable if was_enabled else gc.disable)()
    shapecalc.analyze("lenet")
    assert gc.isenabled() is was_enabled
    with pytest.raises(shapecalc.ShapeError):
        shapecalc.analyze("alexnet", (1, 1, 8, 8))
    assert gc.isenabled() is was_enabled


def test_importing_a_torch_module_leaves_the_collector_on():
    torch = pytest.importorskip("torch")
    gc.enable()

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return torch.relu(self.conv(x)) + 1

    result = shapecalc.analyze(Net(), (1, 3, 8, 8))
    assert result.output_shape == (1, 4, 6, 6)
    assert gc.isenabled()
