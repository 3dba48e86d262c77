"""Measured fx nodes: one meta run per distinct op, and element types handed from node to node."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import shapecalc  # noqa: E402
from shapecalc.torch_bridge import fx_import, mac_count  # noqa: E402


class Scaled(nn.Module):
    """A layer scale (a parameter times the activations: a measured op) and a roll."""

    def __init__(self, scale_shape):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.scale = nn.Parameter(torch.ones(scale_shape))

    def forward(self, x):
        return (self.fc(x) * self.scale).roll(1, -1)


def _count_runs(monkeypatch) -> list:
    runs = []
    real = mac_count.counted

    def counting(fn, *args, **kwargs):
        runs.append([tuple(a.shape) for a in args])
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(mac_count, "counted", counting)
    return runs


def test_the_same_op_on_the_same_shapes_is_measured_once(monkeypatch):
    # Six blocks alike and one whose scale broadcasts to another shape: 2 + 2 meta runs.
    model = nn.Sequential(*[Scaled((8,)) for _ in range(6)], Scaled((2, 1, 8))).eval()
    runs = _count_runs(monkeypatch)
    result = shapecalc.analyze(model, (1, 5, 8))
    with torch.no_grad():
        out = model(torch.randn(1, 5, 8))
    assert result.output_shape == tuple(out.shape) == (2, 5, 8)
    measured = [r for r in result.records if r.measured]
    assert len(measured) == 14 and len(runs) == 4
    assert [r.output_shape for r in measured[-2:]] == [(2, 5, 8), (2, 5, 8)]
    assert result.total_params == sum(p.numel() for p in model.parameters())
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 5, 8))
    linear_macs = counter.get_total_flops() // 2
    assert result.total_macs == linear_macs + 7 * 5 * 8  # + the bias adds (torchinfo's convention)


def test_a_mask_made_by_a_measured_op_reaches_its_reader_without_a_whole_graph_run(monkeypatch):
    # EdgeNeXt's position encoding: ~zeros(…).to(torch.bool). The bool type comes from the
    # measured op that made it, not from a meta run of the whole graph after a failed pass.
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 6)

        def forward(self, x):
            mask = ~torch.zeros(x.shape[:2]).to(torch.bool)
            return self.fc(x) * mask.cumsum(1, dtype=torch.float32)[..., None]

    def no_whole_run(*args):
        raise AssertionError("a whole-graph meta run")

    monkeypatch.setattr(fx_import, "_fx_dtypes", no_whole_run)
    model = Masked()
    src = shapecalc.load_model(model)
    result = shapecalc.analyze(src, (2, 5, 6))
    assert src.torch_import.route == "fx" and not src.torch_import.typed_values
    with torch.no_grad():
        assert result.output_shape == tuple(model(torch.randn(2, 5, 6)).shape)
    assert any("invert" in r.name and r.measured for r in result.records)


def test_signatures_compare_calls_constants_and_weights():
    from shapecalc.torch_bridge.fx_values import FxValues

    root = nn.Module()
    root.a = nn.Parameter(torch.ones(3))
    root.b = nn.Parameter(torch.ones(3))
    root.c = nn.Parameter(torch.ones(1, 3))
    graph = torch.fx.Graph()
    x = graph.placeholder("x")
    calls = [graph.call_function(torch.mul, (x, graph.get_attr(w))) for w in ("a", "b", "c")]
    rolls = [graph.call_method("roll", (x, k, -1)) for k in (1, True, 1.0)]
    values = FxValues(torch, root, {})
    sig = [values.signature(n, [x]) for n in calls + rolls]
    assert sig[0] == sig[1] != sig[2]  # same weight shape; another shape
    assert sig[3] != sig[4] and sig[3] != sig[5]  # 1, True and 1.0 are three constants
    assert values.signature(graph.call_function(torch.mul, (x, object())), [x]) is None
