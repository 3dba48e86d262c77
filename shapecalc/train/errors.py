"""Errors of a training run; each ends as one line from ``cli.main`` (exit 1)."""

from __future__ import annotations

from shapecalc.core.errors import ShapecalcError


class DataError(ShapecalcError):
    """The dataset is missing, corrupt, truncated or not the official release; names the file."""


class TrainError(ShapecalcError):
    """The run cannot start or continue: no such device, shape mismatch, divergence, out of memory."""
