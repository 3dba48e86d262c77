"""``MatMul`` and ``BatchMatMul`` against real ``torch.matmul`` / ``torch.bmm``: the output shape
of a real product, MACs from torch's own FLOP counter (FLOPs / 2, zero tolerance), and a
refusal exactly where torch refuses.

Torch's counter has formulas for ``mm`` and ``bmm`` only. A 1-D second operand makes torch run
``dot`` or ``mv``, which the counter leaves at 0 (it has no formula); there the MACs are checked
against the multiplications those kernels do: one per element of the other operand.
"""

from __future__ import annotations

from math import prod

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shapecalc.core.arithmetic import FieldRule
from shapecalc.core.errors import ShapeError
from shapecalc.core.layers import BatchMatMul, MatMul, layer_from_dict

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

TORCH_EXAMPLES = min(200, settings.default.max_examples)
sizes = st.integers(1, 4)


def torch_product(fn, a, b):
    """``fn`` on meta tensors of shapes ``a`` and ``b``: (output shape, MACs torch ran), or
    ``None`` where torch refuses."""
    x, y = torch.empty(a, device="meta"), torch.empty(b, device="meta")
    with FlopCounterMode(display=False) as counter:
        try:
            out = fn(x, y)
        except RuntimeError:
            return None
    macs = counter.get_total_flops() // 2
    ops = {str(op) for op in counter.get_flop_counts().get("Global", {})}
    if not ops:  # dot or mv: no formula in the counter, one multiply per element of the bigger operand
        macs = max(prod(a), prod(b))
    else:
        assert ops <= {"aten.mm", "aten.bmm"}, ops
    return tuple(out.shape), macs


@st.composite
def operands(draw):
    """Two shapes of 1 to 4 axes, mostly compatible (shared inner size, batches that broadcast,
    ones where torch expands), sometimes not."""
    ra, rb = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    k = draw(sizes)
    batch = draw(st.lists(sizes, min_size=2, max_size=2))
    a = tuple(draw(st.sampled_from([d, 1])) for d in batch[len(batch) - max(ra - 2, 0):])
    b = tuple(draw(st.sampled_from([d, 1])) for d in batch[len(batch) - max(rb - 2, 0):])
    a = a + ((draw(sizes), k) if ra > 1 else (k,))
    b = b + ((k, draw(sizes)) if rb > 1 else (k,))
    if draw(st.integers(0, 4)) == 0:  # a wrong size somewhere
        which, at = draw(st.booleans()), draw(st.integers(0, 3))
        shape = list(a if which else b)
        shape[at % len(shape)] += draw(st.integers(1, 2))
        a, b = (tuple(shape), b) if which else (a, tuple(shape))
    return a, b


def check_against(layer, fn, a, b):
    want = torch_product(fn, a, b)
    if want is None:
        with pytest.raises(ShapeError) as err:
            layer.output_shape(a, b)
        assert err.value.numbers, "the refusal names the sizes"
        return
    shape, macs = want
    assert layer.output_shape(a, b) == shape
    assert layer.mac_count(shape, a, b) == macs
    assert layer.param_count(a, b) == 0
    assert layer.explain(shape, a, b)


@settings(max_examples=TORCH_EXAMPLES, deadline=None)
@given(operands())
def test_matmul_equals_torch(shapes):
    check_against(MatMul(), torch.matmul, *shapes)


@settings(max_examples=TORCH_EXAMPLES, deadline=None)
@given(operands())
def test_bmm_equals_torch(shapes):
    check_against(BatchMatMul(), torch.bmm, *shapes)


@pytest.mark.parametrize("a, b", [
    ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((5, 2, 3), (3,)), ((3,), (5, 3, 4)),
    ((2, 3), (5, 3, 4)), ((5, 1, 2, 3), (4, 3, 4)), ((2, 1, 3, 4), (1, 5, 4, 2)),
])
def test_one_d_and_broadcast_cases(a, b):
    check_against(MatMul(), torch.matmul, a, b)


def test_scalar_operand_and_input_count_are_refused():
    assert torch_product(torch.matmul, (), (3,)) is None
    with pytest.raises(ShapeError, match="at least 1-D"):
        MatMul().output_shape((), (3,))
    with pytest.raises(ShapeError, match="two tensors, got 1"):
        MatMul().output_shape((2, 3))


def test_errors_name_the_sizes():
    with pytest.raises(ShapeError, match="last size 3 must equal the second's second-to-last size 4") as err:
        MatMul().output_shape((2, 3), (4, 5))
    assert err.value.numbers == {"first_inner": 3, "second_inner": 4}
    with pytest.raises(ShapeError, match="do not broadcast"):
        MatMul().output_shape((2, 1, 3), (3, 3, 4))
    with pytest.raises(ShapeError, match="batch sizes 2 and 3 differ"):
        BatchMatMul().output_shape((2, 1, 3), (3, 3, 4))


def test_no_field_rule_and_a_spec_entry_round_trip():
    assert MatMul().field_steps((2, 3), (3, 4)) is FieldRule.UNKNOWN
    assert layer_from_dict({"type": "MatMul"}) == MatMul()
    assert layer_from_dict({"type": "BatchMatMul"}) == BatchMatMul()
