"""Training a zoo model on Fashion-MNIST: the end-to-end proof that the spec really works.

Modules, one job each: ``data`` (IDX files, verified), ``locate`` (where the data is, the
download), ``pipeline`` (batches made on the device), ``model`` (spec → initialised module,
shape check on the device), ``config`` (options, device), ``loop`` (epochs, checkpoints,
resume, Ctrl-C), ``metrics``, ``report`` (progress and tables), ``distributed`` (DDP),
``plot``. They import torch, so nothing on the torch-free paths imports this package;
``shapecalc.cli.train`` imports it inside the command.
"""

from __future__ import annotations

from shapecalc.train.errors import DataError, TrainError

__all__ = ["DataError", "TrainError"]
