"""The fx converter: a forward parameter the caller leaves at its default is read as that
default wherever a call is mapped onto an engine layer (timm's ``VisionTransformer.forward(x,
attn_mask=None, is_causal=False)`` handing both to ``F.scaled_dot_product_attention``)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import shapecalc  # noqa: E402
from shapecalc.core.arithmetic import FieldRule  # noqa: E402
from shapecalc.core.layers.attention import ScaledDotProductAttention  # noqa: E402
from shapecalc.torch_bridge import mac_count  # noqa: E402
from shapecalc.torch_bridge.mac_count import math_attention  # noqa: E402


class Attend(nn.Module):
    """Self-attention whose mask, causality and scale are the root forward's defaults."""

    def __init__(self, dim: int = 16, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, attn_mask=None, is_causal=False, scale=None, gain=2.0):
        n, length, dim = x.shape
        q, k, v = self.qkv(x).reshape(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=0.0,
                                           is_causal=is_causal, scale=scale)
        return self.proj(a.transpose(1, 2).reshape(n, length, dim)) * gain


def _torch_macs(model, x) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad(), math_attention():
        model(x)
    return counter.get_total_flops() // 2


def _with_defaults(**defaults):
    """``Attend`` with other defaults in its forward's signature (what the trace sees)."""
    forward = Attend.forward

    def changed(self, x, attn_mask=defaults.get("attn_mask"), is_causal=defaults.get("is_causal", False),
                scale=defaults.get("scale"), gain=defaults.get("gain", 2.0)):
        return forward(self, x, attn_mask, is_causal, scale, gain)

    return type("Attend", (Attend,), {"forward": changed})


@pytest.mark.parametrize("defaults", [{}, {"is_causal": True}, {"scale": 0.5, "gain": 3}],
                         ids=["plain", "causal", "scaled"])
def test_defaulted_arguments_give_attention_its_rule_with_torch_s_figures(defaults):
    model = _with_defaults(**defaults)().eval()
    x = torch.randn(2, 7, 16)
    result = shapecalc.analyze(model, tuple(x.shape))
    attention = [r for r in result.records if isinstance(r.layer, ScaledDotProductAttention)]
    assert len(attention) == 1 and not attention[0].measured
    layer = attention[0].layer
    assert (layer.is_causal, layer.scale) == (defaults.get("is_causal", False), defaults.get("scale"))
    with torch.no_grad():
        out = model(x)
    assert result.output_shape == tuple(out.shape)
    assert attention[0].output_shape == (2, 4, 7, 4)
    assert result.total_params == sum(p.numel() for p in model.parameters())
    # The scale by ``gain`` is an element-wise layer too: no row is measured but the reshapes.
    assert {r.type for r in result.records if r.measured} <= {"reshape", "getitem"}
    bias_adds = 7 * 16 * 3 + 7 * 16  # torchinfo's convention: a Linear's bias adds count
    assert result.total_macs == _torch_macs(model, x) + 2 * bias_adds


class Patches(nn.Module):
    """A ViT in small: 4×4 patches of a 16×16 image become tokens that attend to each other."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 16, 4, stride=4)
        self.attend = Attend()

    def forward(self, x, attn_mask=None):
        return self.attend(self.embed(x).flatten(2).transpose(1, 2), attn_mask)


def test_the_field_after_a_defaulted_attention_is_never_a_default():
    # The heads come out of unbind(…)[i], which has no field rule: after the attention the
    # field is unknown, as before it, and not taken for global (autograd: every pixel here,
    # but a window attention reads only its window; see test_layers_attention).
    result = shapecalc.analyze(Patches().eval(), (1, 3, 16, 16))
    rows = {r.name: r for r in result.records}
    assert rows["embed"].rf[0].size == 4
    attention = [r for r in result.records if isinstance(r.layer, ScaledDotProductAttention)]
    assert len(attention) == 1 and attention[0].rf is FieldRule.UNKNOWN


class Shifted(nn.Module):
    """An op with no rule (``roll``) reading a defaulted argument, in blocks alike."""

    def __init__(self) -> None:
        super().__init__()
        self.fcs = nn.ModuleList(nn.Linear(8, 8) for _ in range(4))

    def forward(self, x, shift=1):
        for fc in self.fcs:
            x = torch.roll(fc(x), shifts=shift, dims=-1)
        return x


def test_a_measured_node_reads_a_default_and_is_measured_once_for_blocks_alike(monkeypatch):
    runs = []
    for name in ("counted", "mac_free"):  # a roll needs no counter, but it is still a run
        real = getattr(mac_count, name)

        def counting(fn, *args, real=real, **kwargs):
            runs.append(fn)
            return real(fn, *args, **kwargs)

        monkeypatch.setattr(mac_count, name, counting)
    model = Shifted().eval()
    result = shapecalc.analyze(model, (2, 3, 8))
    rolls = [r for r in result.records if r.type == "roll"]
    assert len(rolls) == 4 and all(r.measured for r in rolls)
    assert len(runs) == 1  # the default is a constant: four rolls alike share one meta run
    x = torch.randn(2, 3, 8)
    with torch.no_grad():
        assert result.output_shape == tuple(model(x).shape)
    assert result.total_macs == _torch_macs(model, x) + 4 * 2 * 3 * 8
