"""Every zoo model against real PyTorch: shapes at every node, parameters, torchinfo's MACs.

The spec is the single source of truth for both the engine and the built ``nn.Module``; these
tests are what make that claim true. Models over ~20M parameters are built and run on the
``meta`` device (shapes without memory or weight initialisation), the rest on the CPU.
"""

from __future__ import annotations

import pytest

from shapecalc import analyze, load_model
from shapecalc.core.layers import MERGE_TYPES
from shapecalc.models.zoo import ZOO, get_entry
from shapecalc.core.errors import SpecError

torch = pytest.importorskip("torch")
torchinfo = pytest.importorskip("torchinfo")
from shapecalc.models.torch_models import build_module
from shapecalc.torch_bridge import trace_shapes  # noqa: E402

BIG = 20_000_000

#: Final output shape at the default input, written out (not computed) per model.
EXPECTED_OUTPUT = {
    "lenet": (1, 10), "lenet-bn": (1, 10), "alexnet": (1, 10), "alexnet-2012": (1, 1000),
    "alexnet-torchvision": (1, 1000), "vgg11": (1, 10), "vgg16": (1, 1000), "nin": (1, 10),
    "googlenet": (1, 10), "resnet18": (1, 10), "resnet50": (1, 1000), "densenet": (1, 10),
}

#: torchvision's published parameter counts (torchvision.models docs), as literals.
TORCHVISION_PARAMS = {"vgg16": 138_357_544, "resnet50": 25_557_032, "alexnet-torchvision": 61_100_840}


@pytest.fixture(scope="module", params=sorted(ZOO))
def built(request):
    """(name, analysis, module, device, traced shapes) for one zoo model at its default input."""
    name = request.param
    analysis = analyze(name)
    device = "meta" if analysis.total_params > BIG else "cpu"
    with torch.device(device):
        module = build_module(name)
    traced = trace_shapes(module, analysis.input_shape, device=device)
    return name, analysis, module, device, traced


def test_every_model_has_an_expected_output():
    assert set(EXPECTED_OUTPUT) == set(ZOO)


def test_shape_at_every_node_equals_torch(built):
    name, analysis, _, _, traced = built
    checked = 0
    for rec in analysis.records:
        if rec.type in MERGE_TYPES:  # merges run inside their block's forward, not as modules
            continue
        assert rec.name in traced, f"{name}: no torch module at {rec.name}"
        assert tuple(traced[rec.name]) == rec.output_shape, f"{name}: {rec.name}"
        checked += 1
    for path, block in analysis.blocks.items():
        assert tuple(traced[path]) == block.output_shape, f"{name}: block {path}"
    assert checked >= 10
    assert tuple(traced[""]) == analysis.output_shape


def test_node_names_are_the_torch_module_paths(built):
    name, analysis, module, _, _ = built
    modules = {n for n, _ in module.named_modules() if n}
    names = {r.name for r in analysis.records if r.type not in MERGE_TYPES} | set(analysis.blocks)
    assert names == modules, name


def test_params_equal_torch(built):
    name, analysis, module, _, _ = built
    assert analysis.total_params == sum(p.numel() for p in module.parameters())


def test_macs_equal_torchinfo(built):
    name, analysis, module, device, _ = built
    stats = torchinfo.summary(module, input_size=analysis.input_shape, verbose=0, mode="eval", device=device)
    assert analysis.total_macs == stats.total_mult_adds


def test_final_output_shape(built):
    name, analysis, _, _, _ = built
    assert analysis.output_shape == EXPECTED_OUTPUT[name]


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_torchvision_published_param_counts(name):
    assert analyze(name).total_params == TORCHVISION_PARAMS[name]


def test_alexnet_2012_is_the_papers_network():
    a = analyze("alexnet-2012")
    assert a.record("conv1").output_shape == (1, 96, 55, 55)
    assert a.record("pool1").output_shape == (1, 96, 27, 27)
    assert a.record("pool2").output_shape == (1, 256, 13, 13)
    assert a.record("pool5").output_shape == (1, 256, 6, 6)
    assert a.record("conv2").layer.groups == 2 and a.record("conv3").layer.groups == 1
    # Two towers halve conv2/4/5's weights: the grouped network's well-known 60,965,224.
    assert a.total_params == 60_965_224


def test_vgg16_and_alexnet_torchvision_flatten_sizes():
    assert analyze("vgg16").record("flatten").output_shape == (1, 25_088)
    assert analyze("alexnet-torchvision").record("flatten").output_shape == (1, 9_216)


def test_resnet50_paths_name_nested_blocks():
    a = analyze("resnet50")
    rec = a.record("layer3.1.body.conv2")
    assert rec.output_shape == (1, 256, 14, 14)
    assert a.blocks["layer3.0"].type == "Bottleneck"
    assert a.record("layer3.0.shortcut.0").output_shape == (1, 1024, 14, 14)


def test_every_entry_cites_a_source_and_input():
    for entry in ZOO.values():
        assert entry.source and entry.description
        assert len(entry.default_input) == 4


def test_models_accept_other_inputs_through_inferred_sizes():
    # d2l's lazy layers: AlexNet at 227 flattens 9216 instead of 6400.
    assert analyze("alexnet", (1, 1, 227, 227)).record("14").layer.in_features == 9216
    assert analyze("resnet18", (2, 3, 224, 224)).output_shape == (2, 10)


def test_unknown_model_suggests_a_name():
    with pytest.raises(SpecError, match="did you mean 'resnet50'"):
        get_entry("resnet5O")
    assert load_model("ResNet18").name == "resnet18"
