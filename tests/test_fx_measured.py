"""Measured fx nodes: one meta run per distinct op, and element types handed from node to node."""

from __future__ import annotations

import operator

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

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
    """Every meta run of a measured node, counted or not (its input shapes)."""
    runs = []
    for name in ("counted", "mac_free"):
        real = getattr(mac_count, name)

        def counting(fn, *args, real=real, **kwargs):
            runs.append([tuple(a.shape) for a in args])
            return real(fn, *args, **kwargs)

        monkeypatch.setattr(mac_count, name, counting)
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


class Moves(nn.Module):
    """Measured ops that multiply nothing (window shifts, pads, index splits, a position code)
    beside one that does (a product with a weight computed in the forward)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 24)
        self.w = nn.Parameter(torch.randn(8, 8))

    def forward(self, x):  # (N, L, 8)
        n, length, _ = x.shape
        q, k, v = self.fc(x).reshape(n, length, 3, 8).unbind(2)
        position = torch.arange(length, dtype=torch.float32).cumsum(0).sin()[None, :, None]
        y = F.pad(torch.roll(q, 1, 1), (0, 0, 1, 1))[:, 1:-1] + k.repeat(1, 1, 1) * position
        y = F.normalize(y, dim=-1) * v
        return y @ (self.w * 2.0)  # a weight made in the forward: a measured matmul


def test_ops_that_multiply_nothing_run_without_the_counter_and_count_what_torch_counts(monkeypatch):
    free, counted = [], []
    real = mac_count.counted

    def free_but_checked(fn, *args):  # what the counter would have said: exactly nothing
        out, macs = real(fn, *args)
        free.append(fn)
        assert macs == 0
        return out, macs

    def counting(fn, *args):
        counted.append(fn)
        return real(fn, *args)

    monkeypatch.setattr(mac_count, "mac_free", free_but_checked)
    monkeypatch.setattr(mac_count, "counted", counting)
    model = Moves().eval()
    result = shapecalc.analyze(model, (2, 5, 8))
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        assert result.output_shape == tuple(model(x).shape)
    measured = [r for r in result.records if r.measured]
    assert len(free) >= 8 and len(counted) == 1  # only the matmul needs the counter
    assert {r.type for r in measured} >= {"roll", "getitem", "repeat", "cumsum", "normalize", "matmul"}
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    assert result.total_macs == counter.get_total_flops() // 2 + 2 * 5 * 24  # + the bias adds
    assert result.uncounted == []


def test_a_module_s_tuple_item_is_never_taken_for_a_free_op():
    from shapecalc.torch_bridge.fx_measured import multiplies_nothing
    from shapecalc.torch_bridge.fx_values import FxValues, ValueKind

    root = nn.Module()
    root.gru = nn.GRU(4, 4)
    graph = torch.fx.Graph()
    x = graph.placeholder("x")
    out = graph.call_module("gru", (x,))
    item = graph.call_function(operator.getitem, (out, 0))
    view = graph.call_method("view", (x, -1))
    values = FxValues(torch, root, {"gru": root.gru},
                      kind={x: ValueKind.TENSOR, out: ValueKind.TUPLE, item: ValueKind.TENSOR})
    assert not multiplies_nothing(values, item, [x])
    assert multiplies_nothing(values, view, [x])
    user_view = graph.call_function(lambda t: t.view(-1), (x,))  # not torch's: not trusted
    assert not multiplies_nothing(values, user_view, [x])
