"""Hand-written nn.Module models that shapecalc must import exactly like torch runs them.

Each entry of :data:`CORPUS` says how to build the model and which input it takes; entries with
``bug`` have a deliberate shape bug whose diagnosis tests/test_diagnose_torch asserts. Only
imported by tests that already require torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import blocks, chains, decoders, functional, special


@dataclass(frozen=True)
class CorpusModel:
    name: str
    build: Callable
    input_shape: tuple[int, ...]
    route: str  # how shapecalc imports it: chain, fx or hooks
    bug: bool = False


CORPUS: list[CorpusModel] = [
    CorpusModel("lenet_chain", chains.lenet_chain, (2, 1, 28, 28), "chain"),
    CorpusModel("nested_sequential", chains.nested_vgg, (1, 3, 32, 32), "chain"),
    CorpusModel("autoencoder_transposed", chains.conv_autoencoder, (2, 1, 28, 28), "chain"),
    CorpusModel("conv1d_audio", chains.audio_1d, (2, 1, 128), "chain"),
    CorpusModel("conv3d_video", blocks.Video3d, (1, 2, 8, 16, 16), "fx"),
    CorpusModel("resnet_basic", blocks.TinyResNet, (2, 3, 32, 32), "fx"),
    CorpusModel("inception", blocks.TinyInception, (1, 3, 28, 28), "fx"),
    CorpusModel("densenet_concat", blocks.TinyDenseNet, (1, 3, 32, 32), "fx"),
    CorpusModel("mobilenet_se", blocks.TinyMobileNet, (2, 3, 32, 32), "fx"),
    CorpusModel("functional_only", functional.FunctionalNet, (2, 1, 28, 28), "fx"),
    CorpusModel("views_reshapes", functional.ViewsNet, (2, 3, 16, 16), "fx"),
    CorpusModel("reused_modules", functional.ReusedNet, (1, 3, 16, 16), "fx"),
    CorpusModel("lazy_modules", functional.LazyNet, (2, 3, 32, 32), "fx"),
    CorpusModel("unet_small", decoders.TinyUNet, (1, 1, 32, 32), "fx"),
    CorpusModel("measured_ops", special.MeasuredOps, (1, 4, 8, 8), "fx"),
    CorpusModel("untraceable", special.DataDependent, (1, 3, 14, 14), "hooks"),
    CorpusModel("bug_alexnet", special.AlexNetBug, (1, 1, 224, 224), "fx", bug=True),
    CorpusModel("bug_residual_stride", special.ResidualStrideBug, (1, 16, 32, 32), "fx", bug=True),
    CorpusModel("bug_channels", special.channel_bug, (1, 3, 32, 32), "chain", bug=True),
]

WORKING = [m for m in CORPUS if not m.bug]
BUGGY = [m for m in CORPUS if m.bug]
