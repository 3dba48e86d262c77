"""The meta memo answers a repeated op with exactly what torch's meta kernel gives, and nothing else."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings, strategies as st

from shapecalc.torch_bridge.meta_memo import meta_memo

F = torch.nn.functional

#: One-tensor ops whose meta kernels torch writes in Python (element-wise, norms, reductions).
UNARY = {
    "mul2": lambda x: x * 2,
    "mul2.0": lambda x: x * 2.0,  # a float scalar promotes an integer tensor: keyed apart
    "add_self": lambda x: x + x,
    "pow": lambda x: x.pow(2),
    "mean": lambda x: x.mean(-1, keepdim=True),
    "sum0": lambda x: x.sum(0, keepdim=True),
    "rsqrt": lambda x: torch.rsqrt(x.float() + 1),
    "softmax": lambda x: torch.softmax(x.float(), -1),
    "layer_norm": lambda x: F.layer_norm(x.float(), x.shape[-1:]),
    "transpose_mul": lambda x: x.transpose(0, -1) * 3,  # strides of a transposed input
    "cat": lambda x: torch.cat([x, x], -1),
    "to_half": lambda x: x.to(torch.float16),
}


def metadata(value):
    return (tuple(value.shape), value.stride(), value.dtype, value.device.type)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
       dtype=st.sampled_from([torch.float32, torch.bfloat16, torch.int64]),
       ops=st.lists(st.sampled_from(sorted(UNARY)), min_size=1, max_size=8))
def test_a_chain_of_ops_gives_what_torch_gives_without_the_memo(shape, dtype, ops):
    """Every op run twice (the second answer comes from the memo) gives torch's own metadata,
    or torch's own refusal."""
    x = torch.zeros(shape, dtype=dtype, device="meta")

    def run():  # each op's metadata, up to the first op torch refuses (with its message)
        values, y = [], x
        for name in ops:
            try:
                y = UNARY[name](y)
            except RuntimeError as err:
                return values + [str(err)]
            values.append(metadata(y))
        return values

    expected = run()
    memo = meta_memo()
    with memo:
        first, second = run(), run()
    assert first == expected and second == expected
    if isinstance(expected[-1], tuple):  # the second run came from the memo or a rule
        assert memo.hits + memo.ruled > 0


def test_views_and_writes_always_run():
    """A view shares its input's storage and an in-place op changes its argument: never kept."""
    memo = meta_memo()
    x = torch.zeros(4, 6, device="meta")
    with memo:
        for _ in range(2):
            view = x.view(6, 4)
            assert view.untyped_storage()._cdata == x.untyped_storage()._cdata
            y = torch.zeros(4, 6, device="meta")
            assert y.add_(1) is y
    assert memo.hits == 1  # only the second torch.zeros


def test_real_tensors_are_never_answered_from_the_memo():
    memo = meta_memo()
    x = torch.arange(6.0)
    with memo:
        results = [x * 2, x * 2]
    assert memo.hits == 0
    assert all(torch.equal(r, torch.arange(6.0) * 2) for r in results)


def test_a_refused_op_is_refused_every_time():
    memo = meta_memo()
    a, b = torch.zeros(2, 3, device="meta"), torch.zeros(4, 5, device="meta")
    with memo:
        for _ in range(2):
            with pytest.raises(RuntimeError):
                a @ b
    assert memo.hits == 0


def test_a_transformer_block_repeated_comes_from_the_memo_with_the_same_outputs():
    layer = torch.nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, device="meta").eval()
    x = torch.zeros(2, 7, 32, device="meta")
    with torch.no_grad():
        expected = metadata(layer(layer(x)))
        memo = meta_memo()
        with memo:
            got = metadata(layer(layer(x)))
    assert got == expected
    assert memo.hits > 0
