"""Forwards the tracer records directly: the same graph rows as tracing them, fewer fx nodes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
norm_act = pytest.importorskip("timm.layers.norm_act")
nn = torch.nn

import shapecalc  # noqa: E402
from shapecalc.torch_bridge import fx_import  # noqa: E402
from shapecalc.torch_bridge.fx_forwards import recorded_forwards  # noqa: E402


class Net(nn.Module):
    def __init__(self, act: str = "relu", momentum: float | None = 0.1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = norm_act.BatchNormAct2d(8, act_layer=act, momentum=momentum)
        self.plain = norm_act.BatchNormAct2d(8, apply_act=False, affine=False)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.plain(self.bn(self.conv(x))).mean((2, 3)))


@pytest.mark.parametrize("act, momentum", [("relu", 0.1), ("silu", None), ("prelu", 0.1)])
def test_a_recorded_norm_act_gives_the_traced_rows(monkeypatch, act, momentum):
    model = Net(act, momentum).eval()
    fast = shapecalc.load_model(model)
    recorded = shapecalc.analyze(fast, (2, 3, 9, 9), mode="eval")
    monkeypatch.setattr(fx_import, "recorded_forwards", lambda modules, training: {})
    slow = shapecalc.load_model(model)
    traced = shapecalc.analyze(slow, (2, 3, 9, 9), mode="eval")
    assert recorded.to_dict() == traced.to_dict() and recorded.table() == traced.table()
    # The rank check's nodes (the rank, its test, the assert; 4 a module) give no row.
    assert len(fast.torch_import.fx_graph.nodes) == len(slow.torch_import.fx_graph.nodes) - 8
    with torch.no_grad():
        out = model(torch.randn(2, 3, 9, 9))
    assert recorded.output_shape == tuple(out.shape)
    assert recorded.total_params == sum(p.numel() for p in model.parameters())


def test_only_the_eval_forward_of_the_untouched_class_is_recorded():
    model = Net()
    assert set(recorded_forwards(model.modules(), training=False)) == {id(model.bn), id(model.plain)}
    assert recorded_forwards(model.modules(), training=True) == {}
    model.bn.register_forward_hook(lambda *a: None)
    model.plain.forward = lambda x: x

    class Own(norm_act.BatchNormAct2d):
        def forward(self, x):
            return super().forward(x) * 2

    assert recorded_forwards([model.bn, model.plain, Own(8)], training=False) == {}
