"""The step replay on hand-made timelines: a chain's inference peak is its largest pair of
neighbouring activations, and a training step holds what backward still needs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shapecalc.core.step_replay import Step, Timeline


def chain(sizes: list[int], kept: bool) -> Timeline:
    """input → layer 0 → layer 1 → …; with ``kept`` every layer keeps its input."""
    line = Timeline()
    previous = line.storage(sizes[0])
    line.inputs = (previous,)
    for i, size in enumerate(sizes[1:]):
        out = line.storage(size)
        if kept:
            line.keepers.setdefault(previous, []).append(i)
        line.steps.append(Step(str(i), (out,), (previous,), out,
                               ((previous, sizes[i]),) if i else (), True, 0))
        previous = out
    line.outputs = frozenset({previous})
    return line


@given(st.lists(st.integers(1, 10**9), min_size=2, max_size=30))
def test_inference_holds_the_input_and_the_largest_neighbouring_pair(sizes):
    line = chain(sizes, kept=False)
    pairs = max(a + b for a, b in zip(sizes[1:], sizes[2:])) if len(sizes) > 2 else 0
    assert line.inference_peak() == sizes[0] + max(sizes[1], pairs)


@given(st.lists(st.integers(1, 10**9), min_size=2, max_size=30))
def test_training_holds_every_kept_input_at_the_end_of_the_forward(sizes):
    line = chain(sizes, kept=True)
    peak, where = line.training_peak(persistent=7, gradients=0, optimizer_step=0)
    assert peak >= 7 + sum(sizes)  # every input kept, plus the output
    assert where.startswith(("forward", "backward of"))


def test_the_optimizer_step_can_be_the_peak():
    line = chain([4, 4, 4], kept=True)
    peak, where = line.training_peak(persistent=100, gradients=50, optimizer_step=100)
    assert (peak, where) == (100 + 50 + 100 + 4, "optimizer step")
