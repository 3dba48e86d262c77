"""The trained network is the engine's spec, built by ``torch_bridge`` and checked on the device.

Building from the spec (not a hand-written copy) is the point: the classifier's
``in_features`` comes from the engine's arithmetic at the chosen image size, and the shape
check before training proves the table the user reads is the module that trains.

The model is resolved ONCE (:func:`resolve`, the same resolver as ``show``) and the resulting
:class:`ModelSource` is passed to everything else, so a Python target is imported once and a
zoo name looked up once. A checkpoint stores the model as the engine's own JSON spec
(:func:`stored_model`); :func:`from_stored` rebuilds it from that data alone, never importing
or calling anything a file names.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from shapecalc.diagnose.size_search import minimum_input
from shapecalc.models.api import analyze, load_model
from shapecalc.core.errors import ShapecalcError, ShapeError, SpecError, UsageError
from shapecalc.core.graph import Analysis
from shapecalc.models.model_source import ModelSource
from shapecalc.models.torch_models import build_module
from shapecalc.torch_bridge import trace_shapes
from shapecalc.train.config import is_cuda
from shapecalc.train.errors import TrainError

#: Sizes tried, smallest first, when the chosen one does not fit: Fashion-MNIST's own 28 first.
SIZE_HINTS = (28, 32, 64, 96, 128, 224)


def resolve(model: Any) -> ModelSource:
    """A zoo name, spec file, Python target, spec Block or nn.Module → its ModelSource (once);
    a ``timm:``/``hf:`` architecture with real weights, whatever its size: it is to train."""
    return load_model(model, meta=False)


def default_image_size(src: ModelSource) -> int:
    """The model's own input size (224 for d2l's AlexNet, 28 for LeNet or a 28×28 spec)."""
    shape = src.default_input
    if shape and len(shape) == 4 and shape[-1] == shape[-2]:
        return int(shape[-1])
    return 224


def answers_ten_classes(src: ModelSource, size: int) -> bool:
    """Whether the model turns one 1-channel ``size``×``size`` image into 10 class scores
    (what Fashion-MNIST training needs), by the engine alone."""
    try:
        return tuple(analyze(src, (1, 1, size, size)).output_shape) == (1, 10)
    except ShapecalcError:
        return False


def check_image_size(src: ModelSource | str, size: int) -> Analysis:
    """Fail before any work unless the model takes 1×``size``×``size`` and gives 10 classes.

    The failure names ``--image-size`` and, when one exists, a size that does fit.
    """
    src = resolve(src)
    try:
        table = analyze(src, (1, 1, size, size))
    except ShapeError as err:
        try:
            smallest = minimum_input(src, (1, 1, size, size))
        except SpecError:  # recorded at one size only: no scan possible
            smallest = None
        if smallest is not None and size < smallest:
            raise UsageError(
                f"--image-size: {src.name} needs at least {smallest}x{smallest} "
                f"(the smallest input its layers accept), got {size}"
            ) from None
        fitting = next((s for s in SIZE_HINTS if s != size and answers_ten_classes(src, s)), None)
        hint = (f"; try --image-size {fitting}" if fitting is not None else
                "; --image-size sets the size Fashion-MNIST's 28x28 images are resized to")
        raise TrainError(f"--model {src.name} cannot take Fashion-MNIST batches of "
                         f"1x{size}x{size}: {err}{hint}") from None
    if tuple(table.output_shape) != (1, 10):
        raise TrainError(f"--model {src.name}: its output is {_fmt(table.output_shape)}, "
                         "Fashion-MNIST needs 10 class scores (1x10)")
    return table


def xavier_init(module: nn.Module) -> None:
    """d2l's init: Xavier-uniform weights for Conv2d and Linear, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build(src: ModelSource | str, size: int, seed: int) -> nn.Module:
    """The spec's module for a 1×``size``×``size`` input, initialised from ``seed``.

    ``size`` must have passed :func:`check_image_size`. A Python target's own module is
    trained as it is (its weights re-initialised the same way, so runs are reproducible).
    """
    src = resolve(src)
    module = build_module(src, (1, 1, size, size))
    torch.manual_seed(seed)
    xavier_init(module)
    return module


def check_shapes(src: ModelSource | str, module: nn.Module, size: int, device: torch.device,
                 batch: int = 2) -> int:
    """Forward a batch on ``device`` with hooks; any layer differing from the engine stops the run.

    Returns the number of layers compared.
    """
    src = resolve(src)
    shape = (batch, 1, size, size)
    table = analyze(src, shape)
    try:
        measured = trace_shapes(module, shape, device=str(device))
    except RuntimeError as err:  # a layer that disagrees badly enough that torch refuses it
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TrainError(f"shape check failed before training: torch's forward on {device} "
                         f"raised: {first}; check --image-size") from None
    diffs = []
    for record in table.records:
        got = measured.get(record.name)
        if got is not None and tuple(got) != tuple(record.output_shape):
            diffs.append(f"{record.name} ({record.type}): engine {_fmt(record.output_shape)}, "
                         f"torch {_fmt(got)}")
    if tuple(measured[""]) != tuple(table.output_shape):
        diffs.append(f"output: engine {_fmt(table.output_shape)}, torch {_fmt(measured[''])}")
    if diffs:
        raise TrainError("shape check failed before training: " + "; ".join(diffs))
    return len(table.records)


def warm_up(module: nn.Module, optimizer, train_x: torch.Tensor, test_x: torch.Tensor,
            amp: bool) -> None:
    """One forward/backward at the training batch shape, one forward at the test batch shape.

    cuDNN's autotuning and the first kernel launches then happen before epoch 1's clock
    starts. Nothing changes: no optimiser step, gradients cleared, BatchNorm buffers and the
    RNG states (dropout) restored, so the run is the same as without the warm-up.
    """
    from shapecalc.train.checkpoint import restore_rng, rng_states

    dev = train_x.device
    rng = rng_states(dev)
    buffers = {k: v.clone() for k, v in module.named_buffers()}
    labels = torch.zeros(train_x.shape[0], dtype=torch.long, device=dev)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
        nn.functional.cross_entropy(module(train_x), labels).backward()
    optimizer.zero_grad(set_to_none=True)
    with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
        module.eval()
        module(test_x)
    module.train()
    with torch.no_grad():
        for k, v in module.named_buffers():
            v.copy_(buffers[k])
    restore_rng(rng, dev)
    if is_cuda(dev):
        torch.cuda.synchronize(dev)


# -- the model as data, for checkpoints and model.pt ------------------------------------------
def stored_model(src: ModelSource, text: str) -> dict[str, Any]:
    """What a checkpoint keeps of the model: its name, zoo name and spec (``None`` if it has none).

    A Python target whose module is a chain of known layers has a spec; a module with its own
    ``forward`` has none, and a resume then needs ``--model`` again (see :func:`from_stored`).
    """
    from shapecalc.models.spec_writer import spec_to_dict
    from shapecalc.models.zoo import ZOO

    spec = None
    if src.spec is not None:
        try:
            spec = spec_to_dict(src.spec, src.name, src.default_input)
        except SpecError:  # a block kind spec files cannot hold
            spec = None
    zoo = text.strip().lower() if isinstance(text, str) and text.strip().lower() in ZOO else None
    return {"name": src.name, "zoo": zoo, "spec": spec, "given_as": str(text)}


def from_stored(stored: Any, where: str,
                again: str = "pass --model {given} again to resume it") -> ModelSource:
    """Rebuild the ModelSource from :func:`stored_model`'s data: parsing only, no import, no call.

    ``again`` says how to name a spec-less Python model explicitly (``{given}`` is its MODEL).
    """
    from shapecalc.models.specfile import parse_spec

    if not isinstance(stored, dict) or not isinstance(stored.get("name"), str):
        raise TrainError(f"{where}: the model entry is malformed (expected name and spec)")
    spec = stored.get("spec")
    if spec is None:
        given = stored.get("given_as") or stored["name"]
        raise TrainError(f"{where}: the run trained the Python model {given}, which has no spec "
                         f"form; {again.format(given=given)} (that runs its code)")
    try:
        doc = parse_spec(spec, where=f"{where}: model spec")
    except SpecError as err:
        raise TrainError(str(err)) from None
    name = stored["name"]
    return ModelSource(name, doc.block.to_graph(name), doc.input_shape, doc.block,
                       f"the spec stored in {where}", where)


def _fmt(shape) -> str:
    return "x".join(str(d) for d in shape)
