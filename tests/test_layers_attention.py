"""Attention layers against real torch: shapes from a forward, parameters from the module,
MACs from torch's own FLOP counter.

``FlopCounterMode`` counts 2 FLOPs per multiply-accumulate of a matmul and nothing else, so
shapecalc's MACs must equal ``flops / 2`` plus the bias adds it counts (one per bias element
per position, as for Linear), exactly: the tolerance is zero. Two settings make torch run the
matmuls the counter can see: the MATH kernel of ``scaled_dot_product_attention`` (the fused
CPU kernel is invisible to the counter) and gradients enabled (``nn.MultiheadAttention``'s
inference fast path is one fused op, invisible too).
"""

from __future__ import annotations

from math import prod

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shapecalc.core.arithmetic import FieldRule
from shapecalc.core.errors import ConfigError, ShapeError
from shapecalc.core.layers import (
    MultiheadAttention, ScaledDotProductAttention, TransformerEncoderLayer, layer_from_dict,
    layer_to_dict,
)

torch = pytest.importorskip("torch")
torchinfo = pytest.importorskip("torchinfo")
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

#: Each example runs a real forward under the FLOP counter: enough to cover the argument
#: combinations, capped so the CI profile's 500 does not add minutes.
TORCH_EXAMPLES = min(150, settings.default.max_examples)


def counted(fn, *args, **kwargs):
    """``fn(*args)`` and the FLOPs torch's counter saw, with every matmul visible to it."""
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        out = fn(*args, **kwargs)
    return out, counter.get_total_flops()


def params_of(module) -> int:
    return sum(p.numel() for p in module.parameters())


def sequence(batched: bool, batch_first: bool, n: int, length: int, features: int) -> tuple[int, ...]:
    if not batched:
        return (length, features)
    return (n, length, features) if batch_first else (length, n, features)


# ------------------------------------------------------------------ MultiheadAttention
@st.composite
def attention_cases(draw):
    heads, head_dim = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    e = heads * head_dim
    cross = draw(st.booleans())
    kdim = draw(st.one_of(st.none(), st.integers(1, 6))) if cross else None
    vdim = draw(st.one_of(st.none(), st.integers(1, 6))) if cross else None
    layer = MultiheadAttention(
        e, heads, bias=draw(st.booleans()), add_bias_kv=draw(st.booleans()),
        add_zero_attn=draw(st.booleans()), kdim=kdim, vdim=vdim, batch_first=draw(st.booleans()))
    batched, n = draw(st.booleans()), draw(st.integers(1, 3))
    length, keys = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    q = sequence(batched, layer.batch_first, n, length, e)
    if not cross:
        return layer, (q,)
    k = sequence(batched, layer.batch_first, n, keys, layer.key_dim)
    v = sequence(batched, layer.batch_first, n, keys, layer.value_dim)
    return layer, (q, k, v)


@settings(max_examples=TORCH_EXAMPLES)
@given(case=attention_cases())
def test_multihead_attention_equals_torch(case):
    layer, shapes = case
    module = torch.nn.MultiheadAttention(**layer.torch_kwargs()).eval()
    tensors = [torch.randn(s) for s in shapes] * (3 if len(shapes) == 1 else 1)
    (out, weights), flops = counted(module, *tensors)
    expected = layer.output_shape(*shapes)
    assert tuple(out.shape) == expected
    assert layer.extra_outputs(*shapes) == (("attn_output_weights", tuple(weights.shape)),)
    assert layer.param_count(*shapes) == params_of(module)
    # the bias adds FlopCounterMode leaves out: in-projections of L queries and S keys and
    # values, and the out-projection of L outputs, each E adds per position and sample
    n = 1 if len(shapes[0]) == 2 else shapes[0][0 if layer.batch_first else 1]
    length, keys = shapes[0][-2 if len(shapes[0]) == 2 or layer.batch_first else 0], \
        shapes[-1][-2 if len(shapes[-1]) == 2 or layer.batch_first else 0]
    bias_adds = n * layer.embed_dim * (2 * length + 2 * keys) if layer.bias else 0
    assert layer.mac_count(expected, *shapes) == flops // 2 + bias_adds


def test_multihead_attention_worked_example():
    """ViT-B/16's attention: 197 tokens, E = 768, 12 heads. Attention matmuls are 2·L²·E."""
    layer = MultiheadAttention(768, 12, batch_first=True)
    x = (1, 197, 768)
    assert layer.param_count(x) == 4 * 768 * 768 + 4 * 768 == 2_362_368
    projections = 4 * 197 * (768 * 768 + 768)
    attention = 2 * 197 * 197 * 768
    assert layer.mac_count(x, x) == projections + attention == 524_997_120


def test_multihead_attention_refusals_name_the_problem():
    with pytest.raises(ConfigError, match="divisible by num_heads"):
        MultiheadAttention(10, 3)
    layer = MultiheadAttention(8, 2, batch_first=True)
    with pytest.raises(ShapeError, match="query has 6 features, expected 8"):
        layer.output_shape((2, 5, 6))
    with pytest.raises(ShapeError, match="key has 4 positions but value has 3"):
        layer.output_shape((2, 5, 8), (2, 4, 8), (2, 3, 8))
    with pytest.raises(ShapeError, match="batch"):
        layer.output_shape((2, 5, 8), (3, 4, 8), (3, 4, 8))
    with pytest.raises(ShapeError, match="2-D .* or 3-D"):
        layer.output_shape((2, 5, 8, 1))


# ------------------------------------------------------------------ scaled_dot_product_attention
@st.composite
def sdpa_cases(draw):
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    gqa = len(batch) >= 1 and draw(st.booleans())
    k_batch = list(batch)
    if gqa:
        k_batch[-1] = draw(st.sampled_from([h for h in range(1, batch[-1] + 1) if batch[-1] % h == 0]))
    elif batch and draw(st.booleans()):
        k_batch[0] = 1  # broadcast over the first batch dim
    length, keys = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    e, ev = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    q = (*batch, length, e)
    k = (*k_batch, keys, e)
    v = (*k_batch, keys, ev)
    layer = ScaledDotProductAttention(is_causal=draw(st.booleans()), enable_gqa=gqa)
    return layer, (q, k, v)


@settings(max_examples=TORCH_EXAMPLES)
@given(case=sdpa_cases())
def test_scaled_dot_product_attention_equals_torch(case):
    layer, shapes = case
    kwargs = {k: v for k, v in layer.torch_kwargs().items() if k in ("is_causal", "enable_gqa")}
    out, flops = counted(torch.nn.functional.scaled_dot_product_attention,
                         *[torch.randn(s) for s in shapes], **kwargs)
    expected = layer.output_shape(*shapes)
    assert tuple(out.shape) == expected
    assert layer.mac_count(expected, *shapes) == flops // 2  # no weights, no bias: exact
    assert layer.param_count(*shapes) == 0


def test_scaled_dot_product_attention_refuses_what_torch_refuses():
    layer = ScaledDotProductAttention()
    q, k, v = torch.randn(2, 5, 8), torch.randn(2, 4, 6), torch.randn(2, 4, 6)
    with pytest.raises(RuntimeError):
        torch.nn.functional.scaled_dot_product_attention(q, k, v)
    with pytest.raises(ShapeError, match="query has 8 features and key 6"):
        layer.output_shape((2, 5, 8), (2, 4, 6), (2, 4, 6))
    with pytest.raises(ShapeError, match="key has 4 positions but value has 3"):
        layer.output_shape((2, 5, 8), (2, 4, 8), (2, 3, 8))


# ------------------------------------------------------------------ TransformerEncoderLayer
@st.composite
def encoder_cases(draw):
    heads, head_dim = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    layer = TransformerEncoderLayer(
        heads * head_dim, heads, dim_feedforward=draw(st.integers(1, 8)), dropout=0.0,
        activation=draw(st.sampled_from(["relu", "gelu"])), batch_first=draw(st.booleans()),
        norm_first=draw(st.booleans()), bias=draw(st.booleans()))
    shape = sequence(draw(st.booleans()), layer.batch_first, draw(st.integers(1, 3)),
                     draw(st.integers(1, 5)), layer.d_model)
    return layer, shape


@settings(max_examples=TORCH_EXAMPLES)
@given(case=encoder_cases())
def test_transformer_encoder_layer_equals_torch(case):
    layer, shape = case
    module = torch.nn.TransformerEncoderLayer(**layer.torch_kwargs()).eval()
    out, flops = counted(module, torch.randn(shape))
    expected = layer.output_shape(shape)
    assert tuple(out.shape) == expected
    assert layer.param_count(shape) == params_of(module)
    e, f = layer.d_model, layer.dim_feedforward
    positions = prod(shape[:-1])
    bias_adds = positions * (4 * e + f + e) if layer.bias else 0  # q, k, v, out; linear1, linear2
    norms = 2 * shape[0] * (2 * e if layer.bias else e)  # LayerNorm: affine once per sample
    assert layer.mac_count(expected, shape) == flops // 2 + bias_adds + norms


def test_transformer_encoder_layer_spec_round_trip():
    entry = {"type": "TransformerEncoderLayer", "d_model": 16, "nhead": 4, "dim_feedforward": 32,
             "activation": "gelu", "batch_first": True}
    layer = layer_from_dict(entry)
    assert layer_to_dict(layer) == entry
    with pytest.raises(ConfigError, match="activation must be one of relu, gelu"):
        TransformerEncoderLayer(16, 4, activation="swish")


def test_vit_b16_parameter_total_from_its_layers():
    """The issue's reference: ViT-B/16 at 224×224 with 1,000 classes has 86,567,656 parameters.
    Its encoder blocks are pre-norm TransformerEncoderLayers with GELU; the class token and the
    position embedding are bare parameters (768 and 197·768). Torch's modules are built on the
    meta device, so the count costs no memory."""
    from shapecalc.core.layers import Conv2d, LayerNorm, Linear

    block = TransformerEncoderLayer(768, 12, 3072, dropout=0.0, activation="gelu",
                                    batch_first=True, norm_first=True)
    tokens = (1, 197, 768)
    layers = [(Conv2d(3, 768, 16, stride=16), (1, 3, 224, 224))] + [(block, tokens)] * 12 + [
        (LayerNorm(768, 1e-6), tokens), (Linear(768, 1000), (1, 768))]
    total = sum(layer.param_count(shape) for layer, shape in layers) + 768 + 197 * 768
    assert total == 86_567_656
    real = torch.nn.TransformerEncoderLayer(**block.torch_kwargs(), device="meta")
    assert block.param_count(tokens) == sum(p.numel() for p in real.parameters()) == 7_087_872


# ------------------------------------------------------------------ receptive fields
class _Tokens(torch.nn.Module):
    """2×2 patches of an 8×8 image as 16 tokens; ``how`` attends over them with ``op``
    (``F.scaled_dot_product_attention``, ``nn.MultiheadAttention`` or
    ``nn.TransformerEncoderLayer``), batch first or sequence first."""

    def __init__(self, how: str, op: str = "sdpa", batch_first: bool = True) -> None:
        super().__init__()
        self.how, self.op, self.batch_first = how, op, batch_first
        self.embed = torch.nn.Conv2d(3, 8, 2, stride=2)
        self.pool = torch.nn.AvgPool2d(2)
        if op == "mha":
            self.attend = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first)
        elif op == "encoder":
            self.attend = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0,
                                                           batch_first=batch_first)

    def _attention(self, q, kv=None, causal=False):
        """(N, L, E) in, (N, L, E) out; sequence first for the modules built so."""
        if self.op == "sdpa":
            kv = q if kv is None else kv
            return torch.nn.functional.scaled_dot_product_attention(q, kv, kv, is_causal=causal)
        length = q.shape[1]
        if not self.batch_first:
            q, kv = q.transpose(0, 1), None if kv is None else kv.transpose(0, 1)
        if self.op == "encoder":
            return self.attend(q)
        if causal:
            mask = torch.triu(torch.ones(length, length, dtype=torch.bool), 1)
            return self.attend(q, q, q, attn_mask=mask, need_weights=False)[0]
        if kv is None:
            return self.attend(q, q, q, need_weights=False)[0]
        return self.attend(q, kv, kv, need_weights=False)[0]

    def forward(self, x):
        fmap = self.embed(x)  # (1, 8, 4, 4)
        tokens = fmap.flatten(2).transpose(1, 2)  # (1, 16, 8)
        if self.how == "self":
            return self._attention(tokens)
        if self.how == "windows":  # 4 windows of 2×2 tokens, folded into the batch axis
            w = fmap.permute(0, 2, 3, 1).reshape(1, 2, 2, 2, 2, 8).permute(0, 1, 3, 2, 4, 5)
            return self._attention(w.reshape(4, 4, 8))
        if self.how == "rows":  # axial: each row of 4 tokens a sequence, the rows the batch
            return self._attention(fmap.permute(0, 2, 3, 1).reshape(4, 4, 8))
        if self.how == "cross":  # keys and values from pooled tokens: other fields
            return self._attention(tokens, self.pool(fmap).flatten(2).transpose(1, 2))
        return self._attention(tokens, causal=True)


def _pixel_reach(model, out_index) -> torch.Tensor:
    """Which pixels of the 8×8 image output ``out_index`` reads (its gradient reaches). Its
    features are summed with random weights: a LayerNorm's outputs sum to a constant."""
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    out = model(x)[out_index]
    (out * torch.randn(out.shape)).sum().backward()
    return x.grad[0].abs().sum(0) != 0


ROWS = "rows"  # a known field that is not global: each output reads its row of the image

_ATTENTION_FIELDS = [
    ("self", None, 64),  # every token reads every token: global, as autograd says
    ("windows", FieldRule.UNKNOWN, 16),  # a window reads its window only: not global
    ("rows", ROWS, 16),  # the rows in the batch axis: each output reads its own 2 pixel rows
    ("cross", FieldRule.UNKNOWN, 64),  # keys from elsewhere: no rule claims their field
    ("causal", FieldRule.UNKNOWN, 4),  # token 0 reads itself only
]
_OPS = [("sdpa", True), ("mha", True), ("mha", False), ("encoder", True), ("encoder", False)]


@pytest.mark.parametrize("op, batch_first, how, field, pixels", [
    (op, batch_first, *case) for op, batch_first in _OPS for case in _ATTENTION_FIELDS
    if op != "encoder" or case[0] not in ("cross", "causal")])  # an encoder attends to itself
def test_attention_fields_are_global_only_where_every_output_reads_everything(
        op, batch_first, how, field, pixels):
    """One rule for every attention (``attention_steps``), checked against autograd: output
    (0, 0), token 0 of sequence 0 in either layout, reads ``pixels`` pixels."""
    import shapecalc
    from shapecalc.core.arithmetic.field_axes import Placed
    from shapecalc.core.image_fields import fields_in_image

    model = _Tokens(how, op, batch_first).eval()
    result = shapecalc.analyze(model, (1, 3, 8, 8))
    last = result.records[-1]
    reach = _pixel_reach(model, (0, 0))
    assert int(reach.sum()) == pixels
    inside = fields_in_image(result)[last.name]
    if how == "causal" and op == "mha":  # a mask is no layer argument: the call is measured
        assert last.rf is FieldRule.UNKNOWN and inside is FieldRule.UNKNOWN
        return
    kind = {"sdpa": ScaledDotProductAttention, "mha": MultiheadAttention,
            "encoder": TransformerEncoderLayer}[op]
    assert isinstance(last.layer, kind)
    if field is ROWS:
        assert isinstance(last.rf, Placed)  # the image's rows on the batch axis, columns read whole
        rows, cols = reach.nonzero().T
        assert (inside[0][0], inside[1][0]) == ((int(rows.min()), int(rows.max())),
                                                (int(cols.min()), int(cols.max()))) == ((0, 1), (0, 7))
        return
    assert last.rf is field or last.rf == field
    assert inside == field
