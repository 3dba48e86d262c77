"""``shapecalc.load_trained(run_dir)``: the trained ``nn.Module`` of a finished run, weights loaded.

A run folder's ``model.pt`` holds the model as the engine's JSON spec, the input size it was
trained at and the weights. The module is rebuilt from that spec alone (nothing named in the
file is imported or called) and the weights are checked against it entry by entry. A Python
model with no spec form is rebuilt only from a ``model`` the caller passes explicitly.

This module imports torch only when called, after checking it is installed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from shapecalc.core.errors import ArgumentError, ShapecalcError
from shapecalc.core.safetext import preview


def load_trained(run_dir: str | Path, model: Any = None, device: str = "cpu"):
    """The trained module of ``run_dir`` (a folder written by ``shapecalc train``, or its
    ``model.pt``), in eval mode on ``device``.

    ``model`` (a MODEL string, spec Block or nn.Module) rebuilds a Python model that has no
    spec form; it must have the same weights' names and shapes.
    """
    from shapecalc.core.extras import require

    require("torch", "shapecalc.load_trained", "train")
    from shapecalc.train import checkpoint as ckpt
    from shapecalc.train.model import from_stored, resolve
    from shapecalc.models.torch_models import build_module

    if not isinstance(run_dir, (str, os.PathLike)):
        raise ArgumentError("run_dir", f"expected a folder or model.pt path, got {preview(run_dir)}")
    if not isinstance(device, str) or not device.strip():
        raise ArgumentError("device", f"expected a device name like 'cpu' or 'cuda:0', got "
                                      f"{preview(device)}")
    path = Path(run_dir)
    if path.is_dir():
        path = path / ckpt.MODEL
    where = f"load_trained {path}"
    state = ckpt.load(path, what="load_trained", fmt=ckpt.MODEL_FORMAT)
    source = resolve(model) if model is not None else from_stored(
        state["model"], where, again="pass model='{given}' to load_trained")
    size = state["image_size"]
    module = build_module(source, (1, 1, size, size))
    ckpt.load_weights(module, state["weights"], where)
    from shapecalc.train.config import resolve_device

    try:
        target = resolve_device(device)
    except ShapecalcError as err:
        raise ArgumentError("device", str(err).split(": ", 1)[-1]) from None
    return module.to(target).eval()


__all__ = ["load_trained"]
