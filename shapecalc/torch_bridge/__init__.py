"""Everything that touches torch (with ``shapecalc.train``), imported lazily.

``build``: spec tree → ``nn.Module`` and a real forward's shapes; ``fx_import``: a user's
``nn.Module`` → a :class:`~shapecalc.torch_bridge.fx_import.TorchImport` (its graph and how it was
read), which the models layer wraps. This layer imports only ``core``; importing this package
imports neither module (nor torch): the names below load ``build`` on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_FROM_BUILD = ("NodeCheck", "layer_to_module", "spec_module", "trace_shapes")


def __getattr__(name: str) -> Any:
    if name in _FROM_BUILD:
        return getattr(import_module(".build", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_FROM_BUILD)
