"""Every corpus model against real torch: per-node shapes, parameters and MACs.

Shapes: forward hooks on a real CPU forward (independent of shapecalc's own meta machinery),
plus ``models.torch_models.verify`` for the functional nodes hooks cannot see. Parameters: the sum of
``numel`` (lazy modules materialised by a dry forward first). MACs: torchinfo's
``total_mult_adds`` — except where torchinfo's shortcut is not an exact count: ConvTranspose
(torchinfo multiplies by OUTPUT positions, overcounting strided layers) and Linear applied to a
>2-D input (torchinfo counts it once per sample, not once per position). Those nodes are
compared with ``FlopCounterMode`` FLOPs/2 plus the bias adds, and torchinfo's figure for them is
taken out of its total before the rest is compared.
"""

from __future__ import annotations

from math import prod

import pytest

torch = pytest.importorskip("torch")
torchinfo = pytest.importorskip("torchinfo")

from corpus import BUGGY, WORKING  # noqa: E402

import shapecalc  # noqa: E402
from shapecalc.models.torch_models import verify  # noqa: E402

nn = torch.nn
TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def hooked_shapes(model, shape) -> dict[str, tuple]:
    """Output shape of every module call in one real forward (repeats as ``name#2``)."""
    shapes: dict[str, tuple] = {}
    counts: dict[str, int] = {}
    handles = []
    for name, sub in model.named_modules():
        if not name:
            continue

        def hook(_m, _i, out, name=name):
            counts[name] = counts.get(name, 0) + 1
            key = name if counts[name] == 1 else f"{name}#{counts[name]}"
            shapes[key] = tuple(out.shape)

        handles.append(sub.register_forward_hook(hook))
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(shape))
    for h in handles:
        h.remove()
    shapes[""] = tuple(out.shape)
    return shapes


@pytest.fixture(params=WORKING, ids=lambda m: m.name)
def case(request):
    torch.manual_seed(0)
    return request.param


def test_import_mode(case):
    src = shapecalc.load_model(case.build())
    assert src.torch_import.route == case.route


def test_shapes_match_real_forward(case):
    model = case.build()
    result = shapecalc.analyze(model, case.input_shape)
    real = hooked_shapes(model, case.input_shape)
    assert result.output_shape == real[""]
    graph = result.graph
    checked = 0
    for rec in result.records:
        module = graph.node(rec.name).module
        if module is not None and rec.name in real:
            assert rec.output_shape == real[rec.name], rec.name
            checked += 1
    calls = [n for n in graph.nodes if n.module is not None]
    assert checked == len(calls) > 0  # every module call was compared
    for name, block in result.blocks.items():  # containers (Sequential stages, blocks)
        if name in real:
            assert block.output_shape == real[name], name


def test_verify_agrees_on_every_node(case):
    checks = verify(case.build(), case.input_shape)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    measured = [c for c in checks if c.torch is not None]
    if case.route == "fx":  # the fx interpreter sees functional nodes too
        assert len(measured) == len(checks)


def test_params_equal_numel(case):
    model = case.build()
    result = shapecalc.analyze(model, case.input_shape)  # lazy modules still lazy here
    with torch.no_grad():
        model.eval()(torch.zeros(case.input_shape))  # materialise lazy modules
    assert result.total_params == sum(p.numel() for p in model.parameters())
    assert shapecalc.analyze(model, case.input_shape).total_params == result.total_params


def _exact_nodes(module, in_shape) -> bool:
    return isinstance(module, TRANSPOSED) or (isinstance(module, nn.Linear) and len(in_shape) > 2)


def _exact_macs(module, in_shape) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = module(torch.zeros(in_shape))
    channels = out.shape[-1] if isinstance(module, nn.Linear) else out.shape[1]
    bias = prod(out.shape) // channels * channels if module.bias is not None else 0
    return counter.get_total_flops() // 2 + bias


def test_macs_equal_torchinfo(case):
    model = case.build()
    result = shapecalc.analyze(model, case.input_shape)
    model.eval()
    info = torchinfo.summary(model, input_size=case.input_shape, verbose=0, device="cpu")
    torchinfo_exact = sum(li.macs for li in info.summary_list
                          if li.module is not None and li.input_size
                          and _exact_nodes(li.module, li.input_size))
    engine_exact = 0
    for rec in result.records:
        node = result.graph.node(rec.name)
        sub = model.get_submodule(node.module) if node.module else None
        if sub is not None and _exact_nodes(sub, rec.input_shape):
            assert rec.macs == _exact_macs(sub, rec.input_shape), rec.name
            engine_exact += rec.macs
    assert result.total_macs - engine_exact == info.total_mult_adds - torchinfo_exact


def test_measured_nodes_are_marked_and_shared_counted_once():
    from corpus import functional, special

    result = shapecalc.analyze(special.MeasuredOps(), (1, 4, 8, 8))
    origins = {r.name: r.origin for r in result.records}
    assert origins["getitem"] == "measured" and origins["conv"] == origins["shuffle"] == "derived"
    assert result.record("getitem").description == "chunk(2, dim=1)[0]"
    assert result.record("mix#2").shared and not result.record("mix").shared
    reused = shapecalc.analyze(functional.ReusedNet(), (1, 3, 16, 16))
    shared = [r for r in reused.records if r.name.startswith("shared")]
    assert [r.shared for r in shared] == [False, True, True]
    assert reused.total_macs == sum(r.macs for r in reused.records)  # MACs every time


@pytest.mark.parametrize("bug", BUGGY, ids=lambda m: m.name)
def test_buggy_models_fail_where_torch_fails(bug):
    model = bug.build()
    with pytest.raises(shapecalc.ShapeError) as err:
        shapecalc.analyze(model, bug.input_shape)
    with pytest.raises(RuntimeError):
        model.eval()(torch.zeros(bug.input_shape))
    assert err.value.node
