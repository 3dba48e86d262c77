"""Every node's MACs come from a rule, from torch's count for that node, or are unknown (``?``),
never a silent 0: checked on modules the engine has no rule for, in both import routes."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = nn.functional

import shapecalc  # noqa: E402
from shapecalc.output import MACS_CONVENTION  # noqa: E402
from shapecalc.output.formats import to_markdown  # noqa: E402
from shapecalc.torch_bridge.mac_count import attention_macs, counted, math_attention  # noqa: E402


def flop_counter_macs(model, *xs):
    """torch's FlopCounterMode on a real eval forward, attention on its math path, ÷ 2."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH):
        model.eval()(*xs)
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("fn, shapes, expected", [
    (torch.matmul, [(3, 5), (5, 7)], 3 * 5 * 7),
    (lambda q: F.scaled_dot_product_attention(q, q, q), [(1, 2, 6, 4)], 2 * 2 * 6 * 6 * 4),
    (lambda x, w: F.conv2d(x, w), [(1, 3, 8, 8), (4, 3, 3, 3)], 4 * 6 * 6 * 27),
    (torch.add, [(4, 4), (4, 4)], 0),
    (torch.fft.rfft, [(2, 64)], None),  # work without a formula: unknown, not 0
    # Products with a vector: torch's counter has no formula (it says 0); one MAC per element
    # of the matrix, or of the vectors for a dot product, as its mm formula counts.
    (torch.matmul, [(5,), (5,)], 5),
    (torch.matmul, [(3, 5), (5,)], 3 * 5),
    (torch.matmul, [(5,), (5, 7)], 5 * 7),
    (torch.matmul, [(2, 3, 5), (5,)], 2 * 3 * 5),
    (lambda b, a, v: torch.addmv(b, a, v), [(3,), (3, 5), (5,)], 3 * 5),
    (torch.vdot, [(4,), (4,)], 4),
])
def test_counted_is_torch_s_formula_or_unknown(fn, shapes, expected):
    _, macs = counted(fn, *[torch.zeros(s, device="meta") for s in shapes])
    assert macs == expected


class VectorHead(nn.Module):
    """A score from a learned vector (``x @ self.v``): a measured fx node made of ``mv``."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 16)
        self.v = nn.Parameter(torch.ones(16))

    def forward(self, x):
        return self.lin(x) @ self.v


@pytest.mark.parametrize("q, k, v, kwargs", [
    ((2, 4, 5, 8), (2, 4, 7, 8), (2, 4, 7, 16), {}),
    ((1, 2, 9, 4), (1, 2, 9, 4), (1, 2, 9, 4), {"is_causal": True}),
    ((3, 2, 6, 8), (3, 2, 6, 8), (3, 2, 6, 8), {"attn_mask": "mask"}),
    ((1, 8, 5, 8), (1, 2, 7, 8), (1, 2, 7, 8), {"enable_gqa": True}),
    ((4, 5, 8), (4, 7, 8), (4, 7, 8), {}),  # 3-D: no formula, the counter runs
])
def test_attention_from_torch_s_formula_is_what_its_math_path_counts(q, k, v, kwargs):
    F = torch.nn.functional
    tensors = [torch.randn(s) for s in (q, k, v)]
    if kwargs.get("attn_mask") == "mask":
        kwargs = {"attn_mask": torch.ones(q[-2], k[-2], dtype=torch.bool)}
    try:
        with math_attention():
            _, expected = counted(F.scaled_dot_product_attention, *tensors, **kwargs)
    except TypeError:  # a torch without grouped-query attention
        pytest.skip("enable_gqa needs a newer torch")
    formula = attention_macs(tuple(tensors))
    if formula is None:  # not 4-D, or grouped heads on a torch whose formula has none
        assert len(q) != 4 or q[1] != k[1]
    else:
        assert formula == expected > 0


def test_a_product_with_a_vector_is_counted_not_zero():
    model = VectorHead()
    result = shapecalc.analyze(model, (3, 8))
    rows = {r.name: r for r in result.rows()}
    product = [r for r in rows.values() if r.layer is not None and getattr(r.layer, "measured", False)]
    assert [r.macs for r in product] == [3 * 16]
    assert result.total_macs == 3 * 8 * 16 + 3 * 16 + 3 * 16  # linear weights + bias, then x @ v


class Spectral(nn.Module):
    """An FFT (no formula in torch's counter) between two linears."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(8, 16)
        self.out = nn.Linear(9, 4)

    def forward(self, x):
        return self.out(torch.fft.rfft(self.inp(x)).abs())


class Branchy(Spectral):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent: recorded with hooks
            x = x * 2
        return super().forward(x)


@pytest.mark.parametrize("model, route", [(Spectral(), "fx"), (Branchy(), "hooks")])
def test_unknown_macs_show_as_question_marks_and_lower_bounds(model, route):
    result = shapecalc.analyze(model, (2, 8))
    assert shapecalc.load_model(model).torch_import.route == route
    [fft] = [r for r in result.records if "rfft" in r.name]
    assert fft.macs is None and result.uncounted == [fft.name]
    known = 2 * 16 * 8 + 2 * 16 + 2 * 4 * 9 + 2 * 4  # both linears, with their biases
    assert result.total_macs == known
    table = result.table()
    row = next(line for line in table.splitlines() if fft.name in line.split())
    assert " ? " in row
    assert f"Total MACs: ≥ {known:,}" in table and f"1 node not counted: {fft.name}" in table
    assert "? = not counted" in table
    data = json.loads(result.to_json())
    assert data["uncounted"] == [fft.name]
    assert next(r for r in data["layers"] if r["name"] == fft.name)["macs"] is None
    assert "| ? |" in to_markdown(result)


def test_a_fully_ruled_model_keeps_the_plain_convention_line():
    result = shapecalc.analyze(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), (1, 3, 8, 8))
    assert result.uncounted == [] and result.table().rstrip().endswith(MACS_CONVENTION)
    assert json.loads(result.to_json())["macs_convention"] == MACS_CONVENTION


class SameConv(nn.Conv2d):
    """timm's Conv2dSame: a Conv2d subclass whose forward pads and calls F.conv2d."""

    def forward(self, x):
        return F.conv2d(F.pad(x, (1, 1, 1, 1)), self.weight, self.bias, self.stride)


class Attention(nn.Module):
    """Attention written by hand: the products happen in the module's own code."""

    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-2, -1)).softmax(-1) @ v
        b = F.scaled_dot_product_attention(q, k, v)
        return self.proj((a + b).transpose(1, 2).reshape(n, length, dim))


class HookNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = SameConv(3, 8, 3)
        self.attn = Attention()

    def forward(self, x):
        if x.sum() > 0:  # data-dependent: recorded with hooks
            x = x * 2
        y = self.conv(x).flatten(2)  # 1×8×64
        return self.attn(y[:, :, :32])


def test_hook_import_counts_functional_convolutions_and_attention_where_they_happen():
    model = HookNet()
    result = shapecalc.analyze(model, (1, 3, 8, 8))
    assert shapecalc.load_model(model).torch_import.route == "hooks"
    conv = result.record("conv")
    assert conv.origin == "measured" and conv.macs == 8 * 8 * 8 * 27  # torch's, no bias
    matmuls = [r for r in result.records if r.name.startswith("attn.matmul")]
    assert [r.macs for r in matmuls] == [4 * 8 * 8 * 8] * 2  # QKᵀ and A·V, per head
    sdpa = result.record("attn.scaled_dot_product_attention")
    assert sdpa.macs == 2 * 4 * 8 * 8 * 8
    torch_macs = flop_counter_macs(model, torch.zeros(1, 3, 8, 8))
    assert torch_macs <= result.total_macs <= torch_macs * 1.05  # + the two linears' biases
    assert result.total_macs - torch_macs == 8 * 96 + 8 * 32
    assert "rows marked measured: torch's FLOP counter" in result.table()
    for rec in result.records:  # a measured row says so once
        notes = [str(n) for n in rec.notes]
        assert len(notes) == len(set(notes))


def test_transformers_conv1d_and_sdpa_are_counted():
    """GPT-2's Conv1D is read as the linear layer it is (its weight stored transposed):
    the engine's rule, bias included as for every Linear, where torch's count has none."""
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=100, n_positions=32)
    model = transformers.GPT2LMHeadModel(config)
    ids = torch.zeros(1, 16, dtype=torch.long)
    result = shapecalc.analyze(model, (1, 16), input_dtypes=["int64"])
    conv1d = result.record("transformer.h.0.attn.c_attn")
    assert conv1d.type == "Linear" and conv1d.origin != "measured"
    assert conv1d.macs == 16 * (32 * 96 + 96) and conv1d.params == 32 * 96 + 96
    torch_macs = flop_counter_macs(model, ids)
    assert torch_macs <= result.total_macs <= torch_macs * 1.05
    assert result.total_params == sum(p.numel() for p in model.parameters())
    assert result.output_shape == (1, 16, 100)
