"""The torch bridge knows the layers of modern networks: nn modules map onto layer specs and
back (spec → ``nn.Module`` → spec), and functional calls (``F.layer_norm(x, s, self.w, self.b)``,
``F.scaled_dot_product_attention``, ``F.embedding``) become derived layers whose shapes equal a
real forward and whose parameters are the weights they are handed."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import shapecalc  # noqa: E402
from shapecalc.core.blocks import Sequential  # noqa: E402
from shapecalc.core.graph import analyze_graph  # noqa: E402
from shapecalc.core.layers import (  # noqa: E402
    LSTM, Embedding, Linear, MultiheadAttention, RMSNorm, TransformerEncoderLayer,
)
from shapecalc.models.torch_models import build_module, verify  # noqa: E402
from shapecalc.torch_bridge.build import layer_to_module  # noqa: E402
from shapecalc.torch_bridge.fx_import import module_to_layer, trace_graph  # noqa: E402
from test_layers_attention import attention_cases, encoder_cases  # noqa: E402
from test_layers_recurrent import recurrent_cases  # noqa: E402

#: Each example runs a real forward under the FLOP counter: enough to cover the argument
#: combinations, capped so the CI profile's 500 does not add minutes.
TORCH_EXAMPLES = min(150, settings.default.max_examples)


def canonical(layer):
    """torch stores ``kdim=None`` as ``kdim=embed_dim``; both mean the same module."""
    if isinstance(layer, MultiheadAttention):
        return dataclasses.replace(layer, kdim=None if layer.key_dim == layer.embed_dim else layer.kdim,
                                   vdim=None if layer.value_dim == layer.embed_dim else layer.vdim)
    return layer


@settings(max_examples=TORCH_EXAMPLES)
@given(case=st.one_of(attention_cases(), encoder_cases(), recurrent_cases()))
def test_modules_map_back_onto_the_same_layer(case):
    layer = case[0]
    plain = getattr(nn, layer.type_name)(**layer.torch_kwargs())
    assert module_to_layer(plain) == canonical(layer)
    built = layer_to_module(layer)  # the single-output twin a spec builds
    assert isinstance(built, type(plain)) and module_to_layer(built) == canonical(layer)
    assert built.state_dict().keys() == plain.state_dict().keys()


def test_modules_that_have_no_layer_are_left_to_measurement():
    assert module_to_layer(nn.TransformerEncoderLayer(8, 2, activation=torch.tanh)) is None
    assert module_to_layer(nn.TransformerEncoderLayer(8, 2, activation=nn.GELU("tanh"))) is None
    assert module_to_layer(nn.TransformerEncoderLayer(8, 2, activation="gelu")).activation == "gelu"


def test_a_text_spec_builds_and_runs_as_the_table_says():
    spec = Sequential({"embed": Embedding(100, 16), "lstm": LSTM(16, 32, batch_first=True),
                       "norm": RMSNorm(32), "head": Linear(32, 5)})
    table = shapecalc.analyze(spec, (2, 7))
    module = build_module(spec, (2, 7))
    out = module(torch.randint(0, 100, (2, 7)))
    assert tuple(out.shape) == table.output_shape == (2, 7, 5)
    assert table.total_params == sum(p.numel() for p in module.parameters())
    assert [module_to_layer(m).describe() for m in module] == [r.layer.describe() for r in table.records]


def test_an_attention_spec_builds_imports_and_verifies():
    spec = Sequential({"proj": Linear(8, 16),
                       "attn": MultiheadAttention(16, 4, batch_first=True),
                       "block": TransformerEncoderLayer(16, 4, 32, batch_first=True),
                       "head": Linear(16, 2)})
    table = shapecalc.analyze(spec, (2, 5, 8))
    module = build_module(spec, (2, 5, 8))
    assert table.total_params == sum(p.numel() for p in module.parameters())
    assert all(check.ok for check in verify(spec, (2, 5, 8), device="cpu", module=module))
    again = shapecalc.analyze(module, (2, 5, 8))  # the built module, imported back
    assert (again.total_params, again.total_macs) == (table.total_params, table.total_macs)
    assert [r.type for r in again.records] == [r.type for r in table.records]


class Functional(nn.Module):
    """A block written with functional calls on its own parameters, like timm's and HF's."""

    def __init__(self) -> None:
        super().__init__()
        self.norm_w, self.norm_b = nn.Parameter(torch.ones(16)), nn.Parameter(torch.zeros(16))
        self.rms_w = nn.Parameter(torch.ones(16))
        self.gn_w, self.gn_b = nn.Parameter(torch.ones(16)), nn.Parameter(torch.zeros(16))
        self.qkv_w, self.qkv_b = nn.Parameter(torch.randn(48, 16)), nn.Parameter(torch.zeros(48))
        self.out_w = nn.Parameter(torch.randn(16, 16))

    def forward(self, x):  # x: (N, L, 16)
        x = F.layer_norm(x, (16,), self.norm_w, self.norm_b)
        x = F.rms_norm(x, (16,), self.rms_w)
        x = F.group_norm(x.transpose(1, 2), 4, self.gn_w, self.gn_b).transpose(1, 2)
        q, k, v = F.linear(x, self.qkv_w, self.qkv_b).chunk(3, dim=-1)
        heads = [t.unflatten(-1, (4, 4)).transpose(1, 2) for t in (q, k, v)]
        a = F.scaled_dot_product_attention(*heads, is_causal=True)
        y = F.linear(a.transpose(1, 2).flatten(2), self.out_w)
        return F.hardswish(F.silu(F.gelu(y)))


def test_functional_calls_are_derived_layers_with_their_weights():
    module = Functional()
    table = shapecalc.analyze(module, (2, 6, 16))
    derived = {r.type: r for r in table.records if r.origin == "derived"}
    for name in ("LayerNorm", "RMSNorm", "GroupNorm", "Linear", "ScaledDotProductAttention",
                 "GELU", "SiLU", "Hardswish"):
        assert name in derived, name
    assert derived["LayerNorm"].params == 32 and derived["RMSNorm"].params == 16
    assert derived["GroupNorm"].params == 32
    assert derived["ScaledDotProductAttention"].layer.is_causal
    linears = [r for r in table.records if r.type == "Linear"]
    assert [r.params for r in linears] == [48 * 16 + 48, 16 * 16]
    assert sum(r.params for r in table.records) == sum(p.numel() for p in module.parameters())
    assert all(check.ok for check in verify(module, (2, 6, 16)))
    assert table.output_shape == tuple(module(torch.randn(2, 6, 16)).shape)


def test_functional_embedding_takes_its_table_shape():
    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = nn.Parameter(torch.randn(50, 8))

        def forward(self, ids):
            return F.embedding(ids, self.table, padding_idx=0)

    module = Tokens()
    graph, imp = trace_graph(module, "Tokens")
    table = analyze_graph(graph, (3, 4))  # derived: no float forward on integer ids needed
    (record,) = table.records
    assert record.layer == Embedding(50, 8, padding_idx=0)
    assert table.output_shape == tuple(module(torch.randint(0, 50, (3, 4))).shape)
    assert record.params == module.table.numel()


def test_weights_computed_in_the_forward_are_measured_not_guessed():
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 8))

        def forward(self, x):
            return F.linear(x, self.w * 2)

    table = shapecalc.analyze(Scaled(), (2, 8))
    assert table.output_shape == (2, 4)
    assert [r.type for r in table.records if r.origin == "derived"] != ["Linear"]


def test_a_yaml_spec_file_with_modern_layers(tmp_path):
    """A text classifier written as a spec file: no torch to analyse it, the same numbers as
    the module built from it."""
    path = tmp_path / "text.yaml"
    path.write_text(
        "name: text\n"
        "input: [2, 12]\n"
        "layers:\n"
        "  - {type: Embedding, num_embeddings: 500, embedding_dim: 32, padding_idx: 0}\n"
        "  - {type: TransformerEncoderLayer, d_model: 32, nhead: 4, dim_feedforward: 64,"
        " batch_first: true, activation: gelu}\n"
        "  - {type: GRU, input_size: 32, hidden_size: 16, batch_first: true, bidirectional: true}\n"
        "  - {type: LayerNorm, normalized_shape: 32}\n"
        "  - {type: Linear, out_features: 3}\n", encoding="utf-8")
    table = shapecalc.analyze(str(path))
    assert table.output_shape == (2, 12, 3)
    module = build_module(str(path), (2, 12))
    assert tuple(module(torch.randint(0, 500, (2, 12))).shape) == table.output_shape
    assert table.total_params == sum(p.numel() for p in module.parameters())
    gru = next(r for r in table.records if r.type == "GRU")
    assert gru.layer.extra_outputs((2, 12, 32)) == (("h_n", (2, 2, 16)),)


def test_equal_arguments_of_other_types_never_share_a_layer():
    # 1, 1.0 and True are equal and hash alike; layers built once per distinct arguments must
    # still tell them apart (a layer may take one and refuse another).
    from shapecalc.torch_bridge.fx_common import typed_key

    keys = {typed_key(v) for v in (1, 1.0, True, (1, 1), (True, 1), [1, 1])}
    assert len(keys) == 6
    with pytest.raises(TypeError):
        typed_key(({"a": 1},))

    made: dict = {}  # as one import shares it between modules
    plain = module_to_layer(nn.Flatten(1), made)
    assert plain is not None and plain.start_dim == 1
    assert module_to_layer(nn.Flatten(True), made) is None  # a bool dim is refused, not reused
    assert module_to_layer(nn.Flatten(1), made) is plain  # equal arguments do share


@pytest.mark.parametrize("shape", [(2, 6), (2, 6, 5), (2, 6, 4, 4), (2, 6, 3, 3, 3)])
def test_functional_batch_norm_takes_batchnorm_s_rule_at_any_rank(shape):
    # timm's BatchNormAct2d calls F.batch_norm itself: a rule, not a meta run per norm.
    class NormAct(nn.BatchNorm1d):
        def forward(self, x):
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                self.training, 0.1, self.eps).relu()

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = NormAct(6)

        def forward(self, x):
            return self.norm(x)

    model = Net()
    result = shapecalc.analyze(model, shape)
    [norm] = [r for r in result.records if r.type == "batch_norm"]
    assert norm.origin == "derived" and norm.macs == 2 * 2 * 6  # affine once per sample
    assert result.total_params == sum(p.numel() for p in model.parameters())
    assert result.output_shape == tuple(model(torch.randn(shape)).shape)


def test_recorded_activations_keep_the_receptive_field():
    """A hook recording's measured ``relu`` treats each position alone (its field passes on);
    ``softmax`` (its dim decides) and ``flatten`` (its dims decide) have no rule unmeasured."""
    from shapecalc.torch_bridge.fx_ops import elementwise_op

    assert elementwise_op("relu") and elementwise_op("gelu") and elementwise_op("dropout")
    assert not elementwise_op("softmax") and not elementwise_op("flatten")
    assert not elementwise_op("my_own_function")


class HandAttention(nn.Module):
    """Attention as timm's ViT-family blocks write it: ``q @ kᵀ``, softmax, ``@ v`` and a bmm."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(16, 48)
        self.scale = nn.Parameter(torch.ones(16, 4))

    def forward(self, x):  # x: (N, L, 16)
        n, length, _ = x.shape
        q, k, v = self.qkv(x).reshape(n, length, 3, 4, 4).permute(2, 0, 3, 1, 4).unbind(0)
        attn = (q @ k.transpose(-2, -1)).softmax(-1)
        y = torch.matmul(attn, v).transpose(1, 2).reshape(n, length, 16)
        z = torch.bmm(y, y.transpose(1, 2)).matmul(y)
        return z @ self.scale  # a weight read in the forward: stays as it was (measured)


def test_hand_written_attention_products_are_derived_and_equal_torch():
    from torch.utils.flop_counter import FlopCounterMode

    module = HandAttention()
    table = shapecalc.analyze(module, (2, 5, 16))
    products = [r for r in table.records if r.type in ("MatMul", "BatchMatMul")]
    assert [r.type for r in products] == ["MatMul", "MatMul", "BatchMatMul", "MatMul"]
    assert all(r.origin == "derived" and r.params == 0 for r in products)
    assert [r.output_shape for r in products] == [(2, 4, 5, 5), (2, 4, 5, 4), (2, 5, 5), (2, 5, 16)]
    assert [r.macs for r in products] == [2 * 4 * 5 * 4 * 5, 2 * 4 * 5 * 5 * 4, 2 * 5 * 16 * 5,
                                          2 * 5 * 5 * 16]
    with FlopCounterMode(display=False) as counter:
        out = module(torch.randn(2, 5, 16))
    assert table.output_shape == tuple(out.shape)
    bias_adds = 2 * 5 * 48  # shapecalc counts qkv's bias once per position; torch's counter does not
    assert sum(r.macs for r in table.records if not r.is_block) == counter.get_total_flops() // 2 + bias_adds
    assert sum(r.params for r in table.records) == sum(p.numel() for p in module.parameters())
    assert all(check.ok for check in verify(module, (2, 5, 16)))
