"""The memory account against real torch on the CPU.

- saved activations: every storage autograd packs (``saved_tensors_hooks``), parameters and
  buffers left out, each storage once, must equal the engine's figure, in total and per
  top-level module; the exceptions are listed in :data:`WITHIN` with their reason;
- parameter, gradient and optimizer-state bytes equal the storages of a real step exactly;
- the training peak measured by ``torch.profiler(profile_memory=True)`` over one step is within
  10 % of ``peak_train`` (:data:`PEAK_TOLERANCE`).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from corpus import modern  # noqa: E402

import shapecalc  # noqa: E402
from shapecalc.models.torch_models import build_module  # noqa: E402
from shapecalc.torch_bridge.saved import autograd_saved  # noqa: E402

tv = torchvision.models
PEAK_TOLERANCE = 0.10

#: Models whose engine figure is not exact, the bound it is held to and why. (The Swin-style
#: model was +5.3 %: torch.matmul copies a non-contiguous operand (k, v: views of one permuted
#: qkv) before bmm and keeps the copy, which an op rerun alone on contiguous inputs cannot see;
#: an imported model's memory now comes from one traced forward that sees the real strides.)
WITHIN: dict[str, float] = {}

ZOO = ["alexnet", "lenet", "lenet-bn", "vgg11", "nin", "googlenet", "resnet18", "densenet"]
TORCHVISION = {
    "alexnet_tv": (tv.alexnet, (2, 3, 224, 224)),
    "resnet18_tv": (tv.resnet18, (2, 3, 64, 64)),
    "mobilenet_v3_small": (tv.mobilenet_v3_small, (2, 3, 64, 64)),
    "efficientnet_b0": (tv.efficientnet_b0, (2, 3, 64, 64)),
    "shufflenet_v2": (tv.shufflenet_v2_x0_5, (2, 3, 64, 64)),
    "convnext_tiny": (tv.convnext_tiny, (1, 3, 64, 64)),
    "swin_t": (tv.swin_t, (1, 3, 64, 64)),
    "vit_b_16": (lambda: tv.vit_b_16(image_size=64), (2, 3, 64, 64)),
}
TRANSFORMERS = {
    "vit_small": (modern.small_vit, (2, 3, 32, 32)),
    "swin_small": (modern.SwinTiny, (2, 3, 32, 32)),
}


def _inputs(shape):
    torch.manual_seed(0)
    return [torch.randn(shape)]


def _compare(name, model, shape):
    model.train()
    analysis = shapecalc.analyze(model, shape, mode="train")
    report = analysis.memory(device="laptop-cpu")
    per, total, _ = autograd_saved(model, _inputs(shape))
    assert not report.unknown, report.unknown
    engine: dict[str, int] = {}
    for node, layer in zip(analysis.graph.nodes, report.layers):
        top = (node.module or node.name).split(".")[0]
        engine[top] = engine.get(top, 0) + layer.saved
    measured: dict[str, int] = {}
    for path, size in per.items():
        top = path.split(".")[0]
        measured[top] = measured.get(top, 0) + size
    bound = WITHIN.get(name)
    if bound is None:
        assert report.saved_activations == total, (name, report.saved_activations, total)
    else:
        assert abs(report.saved_activations - total) <= bound * total, (name, report.saved_activations, total)
    return engine, measured


@pytest.mark.parametrize("name", ZOO)
def test_zoo_saved_activations_equal_autograd(name):
    model = build_module(name)
    shape = shapecalc.load_model(name).input_shape(None)
    shape = (2,) + tuple(shape[1:])
    engine, measured = _compare(name, model, shape)
    # a spec's nodes are its modules: every top-level child saves what autograd says
    for top in set(engine) | set(measured):
        assert engine.get(top, 0) == measured.get(top, 0), (top, engine.get(top), measured.get(top))


@pytest.mark.parametrize("name", ["alexnet", "resnet18", "lenet-bn"])
def test_bfloat16_saved_activations_equal_autograd(name):
    shape = (2,) + tuple(shapecalc.load_model(name).input_shape(None)[1:])
    model = build_module(name).train().to(torch.bfloat16)
    report = shapecalc.analyze(name, shape).memory(dtype="bfloat16", device="laptop-cpu")
    _, total, _ = autograd_saved(model, [torch.randn(shape, dtype=torch.bfloat16)])
    assert report.saved_activations == total


@pytest.mark.parametrize("name", ["alexnet", "resnet18", "lenet-bn"])
def test_autocast_saved_activations_match_autograd(name):
    """Within 1 %: batch norm under CPU autocast keeps some statistics otherwise than the
    engine assumes (AlexNet, without batch norm, is exact)."""
    shape = (4,) + tuple(shapecalc.load_model(name).input_shape(None)[1:])
    model = build_module(name).train()
    report = shapecalc.analyze(name, shape).memory(amp=True, device="laptop-cpu")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, total, _ = autograd_saved(model, [torch.randn(shape)])
    assert abs(report.saved_activations - total) <= 0.01 * total, (report.saved_activations, total)
    if name == "alexnet":
        assert report.saved_activations == total


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_saved_activations_equal_autograd(name):
    build, shape = TORCHVISION[name]
    _compare(name, build(), shape)


@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_transformer_saved_activations_equal_autograd(name):
    build, shape = TRANSFORMERS[name]
    _compare(name, build(), shape)


def _storage_bytes(tensors) -> int:
    seen, total = set(), 0
    for t in tensors:
        if torch.is_tensor(t) and t.untyped_storage().data_ptr() not in seen:
            seen.add(t.untyped_storage().data_ptr())
            total += t.untyped_storage().nbytes()
    return total


OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.01),
    "momentum": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
    "adam": lambda p: torch.optim.Adam(p),
    "adamw": lambda p: torch.optim.AdamW(p),
}


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("name", ["alexnet", "resnet18", "lenet-bn"])
def test_parameter_gradient_and_optimizer_bytes_equal_a_real_step(name, optimizer):
    model = build_module(name).train()
    shape = (2,) + tuple(shapecalc.load_model(name).input_shape(None)[1:])
    report = shapecalc.analyze(name, shape).memory(optimizer=optimizer)
    opt = OPTIMIZERS[optimizer](model.parameters())
    model(torch.randn(shape)).sum().backward()
    opt.step()
    params = list(model.parameters())
    assert report.parameters == _storage_bytes(params)
    assert report.gradients == _storage_bytes(p.grad for p in params)
    state = [v for s in opt.state.values() for v in s.values()]
    assert report.optimizer_state == _storage_bytes(state)


def test_frozen_layers_have_no_gradients_or_state():
    model = tv.resnet18()
    for p in model.layer1.parameters():
        p.requires_grad_(False)
    report = shapecalc.analyze(model, (2, 3, 64, 64), mode="train").memory(optimizer="adam")
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    opt.step()
    assert report.gradients == _storage_bytes(p.grad for p in model.parameters() if p.grad is not None)
    assert report.optimizer_state == _storage_bytes(v for s in opt.state.values() for v in s.values())


def measured_peak(model, x, opt) -> int:
    """Bytes held at the peak of one steady-state step on the CPU: the storages alive before it
    (parameters, optimizer state, the batch) plus the highest total the profiler saw allocated
    during forward, backward and step."""
    from torch.profiler import ProfilerActivity, profile

    model(x).sum().backward()  # a first step creates the optimizer state
    opt.step()
    opt.zero_grad(set_to_none=True)
    before = _storage_bytes(list(model.parameters()) + [x]
                            + [v for s in opt.state.values() for v in s.values()])
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model(x).sum().backward()
        opt.step()
    # The allocator's own running total carries what earlier profiles saw: add the window's
    # allocations and frees in time order instead.
    changes = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        if event.tag == torch._C._profiler._EventType.Allocation:
            changes.append((event.start_time_ns, event.extra_fields.alloc_size))
        stack.extend(event.children)
    held = peak = 0
    for _, change in sorted(changes):
        held += change
        peak = max(peak, held)
    return before + peak


PEAK_MODELS = {
    "alexnet": ("alexnet", (16, 1, 224, 224)),
    "vgg11": ("vgg11", (4, 1, 224, 224)),
    "resnet18": ("resnet18", (16, 1, 96, 96)),
    "lenet": ("lenet", (256, 1, 28, 28)),
    "nin": ("nin", (8, 1, 224, 224)),
    "densenet": ("densenet", (8, 1, 96, 96)),
}


#: Peaks held to a wider bound, and why.
PEAK_WITHIN = {
    # oneDNN's convolution backward allocates a 3.2 MB buffer of its own; kernel workspaces are
    # outside the estimate (an assumption it states), and at LeNet's size that is 17 % of the peak.
    "lenet": 0.20,
}


@pytest.mark.parametrize("name", sorted(PEAK_MODELS))
def test_cpu_training_peak_within_ten_percent_of_the_profiler(name):
    model_name, shape = PEAK_MODELS[name]
    torch.manual_seed(0)
    model = build_module(model_name, shape).train()
    report = shapecalc.analyze(model_name, shape).memory(optimizer="adam", device="laptop-cpu")
    with torch.backends.mkldnn.flags(enabled=True):
        peak = measured_peak(model, torch.randn(shape), torch.optim.Adam(model.parameters()))
    ratio = report.peak_train / peak
    assert abs(ratio - 1) <= PEAK_WITHIN.get(name, PEAK_TOLERANCE), (name, report.peak_train, peak, ratio)


TORCHVISION_PEAKS = {
    "mobilenet_v3_small": (tv.mobilenet_v3_small, (16, 3, 112, 112)),
    "efficientnet_b0": (tv.efficientnet_b0, (8, 3, 112, 112)),
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_PEAKS))
def test_cpu_training_peak_of_imported_models_within_ten_percent(name):
    """The same for modules read by the fx importer (in-place activations, squeeze-excitation)."""
    build, shape = TORCHVISION_PEAKS[name]
    torch.manual_seed(0)
    model = build().train()
    report = shapecalc.analyze(model, shape, mode="train").memory(optimizer="adam", device="laptop-cpu")
    peak = measured_peak(model, torch.randn(shape), torch.optim.Adam(model.parameters()))
    assert abs(report.peak_train / peak - 1) <= PEAK_TOLERANCE, (name, report.peak_train, peak)
