"""d2l AlexNet: the engine's every number against the real ``nn.Sequential`` the same spec builds.

Shapes through models.torch_models.verify AND through a minimal hook loop written here, so the bridge
is itself checked; parameters against ``sum(p.numel())``; MACs against torchinfo.
"""

from __future__ import annotations

import pytest

from shapecalc import ShapeError, analyze, minimum_input
from shapecalc.models.torch_models import build_module, verify
from shapecalc.torch_bridge import trace_shapes

torch = pytest.importorskip("torch")
torchinfo = pytest.importorskip("torchinfo")

SEED_LISTING = [  # d2l's printout at 1×1×224×224: output shape after every layer
    (1, 96, 54, 54), (1, 96, 54, 54), (1, 96, 26, 26),
    (1, 256, 26, 26), (1, 256, 26, 26), (1, 256, 12, 12),
    (1, 384, 12, 12), (1, 384, 12, 12), (1, 384, 12, 12), (1, 384, 12, 12),
    (1, 256, 12, 12), (1, 256, 12, 12), (1, 256, 5, 5),
    (1, 6400), (1, 4096), (1, 4096), (1, 4096), (1, 4096), (1, 4096), (1, 4096), (1, 10),
]


def hooked_shapes(module, shape, seen: dict | None = None) -> dict[str, tuple[int, ...]]:
    """Output shape of every child of a Sequential, by forward hooks (independent of the bridge).

    ``seen`` collects the layers that ran, even when a later one raises.
    """
    seen = {} if seen is None else seen
    handles = [
        child.register_forward_hook(lambda _m, _i, out, name=name: seen.__setitem__(name, tuple(out.shape)))
        for name, child in module.named_children()
    ]
    try:
        module.eval()
        with torch.no_grad():
            module(torch.zeros(shape))
    finally:
        for h in handles:
            h.remove()
    return seen


@pytest.fixture(scope="module")
def alexnet_224():
    return build_module("alexnet", (1, 1, 224, 224))


def test_engine_reproduces_the_seed_listing():
    result = analyze("alexnet")
    assert [r.output_shape for r in result.records] == SEED_LISTING


def test_every_layer_shape_equals_a_real_forward(alexnet_224):
    result = analyze("alexnet")
    measured = hooked_shapes(alexnet_224, (1, 1, 224, 224))
    assert {r.name: r.output_shape for r in result.records} == measured
    assert trace_shapes(alexnet_224, (1, 1, 224, 224)) == {**measured, "": (1, 10)}
    checks = verify("alexnet", (1, 1, 224, 224), device="cpu", module=alexnet_224)
    assert len(checks) == len(SEED_LISTING) + 1 and all(c.ok and c.torch for c in checks)


@pytest.mark.parametrize("batch", [1, 3])
def test_params_and_macs_equal_torch_and_torchinfo(alexnet_224, batch):
    result = analyze("alexnet", (batch, 1, 224, 224))
    assert result.total_params == sum(p.numel() for p in alexnet_224.parameters()) == 46_764_746
    info = torchinfo.summary(alexnet_224, input_size=(batch, 1, 224, 224), verbose=0, device="cpu")
    assert result.total_macs == info.total_mult_adds
    assert result.total_params == info.total_params
    per_layer = [r.params for r in result.records]
    assert per_layer == [sum(p.numel() for p in m.parameters()) for m in alexnet_224.children()]


def test_at_227_the_classifier_takes_9216_and_runs():
    result = analyze("alexnet", (1, 1, 227, 227))
    first_linear = result.record("14")
    assert first_linear.input_shape == (1, 9216) and first_linear.layer.in_features == 9216
    assert "in_features=9216 derived from the input" in map(str, first_linear.notes)
    module = build_module("alexnet", (1, 1, 227, 227))
    assert module[14].in_features == 9216
    assert hooked_shapes(module, (1, 1, 227, 227)) == {r.name: r.output_shape for r in result.records}
    assert result.total_params == sum(p.numel() for p in module.parameters())


def test_64_fails_at_node_12_and_65_is_the_smallest_that_works():
    with pytest.raises(ShapeError) as info:
        analyze("alexnet", (1, 1, 64, 64))
    assert info.value.node == "12"
    ran: dict[str, tuple[int, ...]] = {}
    with pytest.raises(RuntimeError, match="Output size is too small"):  # torch agrees...
        hooked_shapes(build_module("alexnet", (1, 1, 65, 65)), (1, 1, 64, 64), ran)
    assert list(ran) == [str(i) for i in range(12)]  # ...at the same layer: 0–11 ran, 12 raised
    assert minimum_input("alexnet") == 65
    module = build_module("alexnet", (1, 1, 65, 65))
    result = analyze("alexnet", (1, 1, 65, 65))
    assert hooked_shapes(module, (1, 1, 65, 65)) == {r.name: r.output_shape for r in result.records}
    assert result.output_shape == (1, 10)
