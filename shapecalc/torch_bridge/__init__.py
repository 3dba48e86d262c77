"""Everything that touches torch (with ``shapecalc.train``), imported lazily.

``build``: spec → ``nn.Module`` and verification against a real forward; ``fx_import``: a
user's ``nn.Module`` → a :class:`~shapecalc.models.model_source.ModelSource`. Importing this package
imports neither (nor torch): the names below load ``build`` on first use, so the import
direction stays one way (``api`` → ``sources`` → ``fx_import``; ``build`` → ``api``) with no
cycle through this package.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_FROM_BUILD = ("NodeCheck", "build_module", "layer_to_module", "trace_shapes", "verify")


def __getattr__(name: str) -> Any:
    if name in _FROM_BUILD:
        return getattr(import_module(".build", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_FROM_BUILD)
