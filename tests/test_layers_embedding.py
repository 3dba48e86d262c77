"""Embedding, EmbeddingBag and RMSNorm against real torch modules (shapes from a forward on
integer indices, ``sum(p.numel())``) and their MAC conventions against torch's FLOP counter
and torchinfo."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shapecalc.core.errors import ConfigError, ShapeError
from shapecalc.core.layers import Embedding, EmbeddingBag, RMSNorm, layer_from_dict, layer_to_dict

torch = pytest.importorskip("torch")
torchinfo = pytest.importorskip("torchinfo")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

embeddings = st.builds(
    lambda n, d, pad: Embedding(n, d, padding_idx=None if pad is None else pad % n),
    st.integers(1, 50), st.integers(1, 16), st.one_of(st.none(), st.integers(0, 49)))


@given(layer=embeddings, shape=st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple))
def test_embedding_equals_torch(layer, shape):
    module = torch.nn.Embedding(**layer.torch_kwargs())
    ids = torch.randint(0, layer.num_embeddings, shape)
    with FlopCounterMode(display=False) as counter:
        out = module(ids)
    expected = layer.output_shape(shape)
    assert tuple(out.shape) == expected
    assert layer.param_count(shape) == sum(p.numel() for p in module.parameters())
    # a lookup multiplies nothing: torch's counter agrees with shapecalc's 0
    assert layer.mac_count(expected, shape) == counter.get_total_flops() == 0


def test_embedding_macs_differ_from_torchinfo_by_one_table_per_sample():
    """torchinfo charges the table's size once per sample, as for any ``weight``; the README's
    conventions table quotes this measurement."""
    layer = Embedding(1000, 64)
    module = torch.nn.Embedding(1000, 64)
    info = torchinfo.summary(module, input_data=torch.zeros(2, 7, dtype=torch.long), verbose=0)
    assert info.total_mult_adds == 2 * 1000 * 64
    assert layer.mac_count(layer.output_shape((2, 7)), (2, 7)) == 0


@given(n=st.integers(1, 30), d=st.integers(1, 8), mode=st.sampled_from(["sum", "mean", "max"]),
       bags=st.integers(1, 4), length=st.integers(1, 5), last=st.booleans())
def test_embedding_bag_equals_torch(n, d, mode, bags, length, last):
    layer = EmbeddingBag(n, d, mode=mode, include_last_offset=last)
    module = torch.nn.EmbeddingBag(**layer.torch_kwargs())
    assert layer.param_count() == sum(p.numel() for p in module.parameters())
    if not last:  # 2-D: one bag per row
        out = module(torch.randint(0, n, (bags, length)))
        assert tuple(out.shape) == layer.output_shape((bags, length))
    offsets = torch.arange(bags + int(last)) * length  # 1-D ids + offsets
    ids = torch.randint(0, n, (bags * length,))
    out = module(ids, offsets)
    assert tuple(out.shape) == layer.output_shape(tuple(ids.shape), tuple(offsets.shape))


def test_embedding_refusals_name_the_argument():
    with pytest.raises(ConfigError, match="padding_idx must be an int from -10 to 9"):
        Embedding(10, 4, padding_idx=10)
    with pytest.raises(ConfigError, match="embedding_dim must be a positive int"):
        Embedding(10, 0)
    with pytest.raises(ConfigError, match="mode must be one of sum, mean, max"):
        EmbeddingBag(10, 4, mode="median")
    with pytest.raises(ShapeError, match="needs 1-D offsets"):
        EmbeddingBag(10, 4).output_shape((12,))


def test_spec_entries_round_trip():
    for entry in ({"type": "Embedding", "num_embeddings": 100, "embedding_dim": 8, "padding_idx": 0},
                  {"type": "EmbeddingBag", "num_embeddings": 100, "embedding_dim": 8, "mode": "sum"},
                  {"type": "RMSNorm", "normalized_shape": [4, 8], "eps": 1e-6}):
        assert layer_to_dict(layer_from_dict(entry)) == entry


# ------------------------------------------------------------------ RMSNorm
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple),
       trailing=st.integers(1, 2), affine=st.booleans())
def test_rms_norm_equals_torch(shape, trailing, affine):
    normalized = shape[-trailing:]
    layer = RMSNorm(normalized, elementwise_affine=affine)
    module = torch.nn.RMSNorm(**layer.torch_kwargs())
    assert tuple(module(torch.randn(shape)).shape) == layer.output_shape(shape)
    assert layer.param_count(shape) == sum(p.numel() for p in module.parameters())


@settings(max_examples=30)
@given(batch=st.integers(1, 4), length=st.integers(1, 6), d=st.integers(1, 16))
def test_rms_norm_macs_equal_torchinfo(batch, length, d):
    """Norm layers follow torchinfo: the affine weight once per sample."""
    layer = RMSNorm(d)
    shape = (batch, length, d)
    info = torchinfo.summary(torch.nn.RMSNorm(d), input_size=shape, verbose=0, device="cpu")
    assert layer.mac_count(shape, shape) == info.total_mult_adds


def test_rms_norm_refuses_a_mismatched_shape():
    with pytest.raises(ShapeError, match="normalized_shape 8 does not match the trailing dims of 2×7"):
        RMSNorm(8).output_shape((2, 7))
    with pytest.raises(RuntimeError):
        torch.nn.RMSNorm(8)(torch.randn(2, 7))
