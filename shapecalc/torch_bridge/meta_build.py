"""Build a model from its architecture without allocating weights it is too big to hold.

A factory (``timm.create_model``, ``AutoModel.from_config``) runs first under the meta device,
where a parameter is a shape and no memory: that costs well under a second even for a
405-billion-parameter configuration and gives the exact count. Only a model small enough (or
one that must train) is then built again with real weights; the analysis never needs them,
but a forward that reads tensor values can then still run once for real.
"""

from __future__ import annotations

from typing import Any, Callable

from shapecalc.core.argcheck import LARGEST
from shapecalc.core.errors import SpecError
from shapecalc.torch_bridge.measure import torch_module


def parameter_count(module: Any) -> int:
    """Distinct parameters (a tied tensor once), as ``module.parameters()`` yields them."""
    return sum(p.numel() for p in module.parameters())


def build_sized(factory: Callable[[], Any], meta: bool | None, threshold: int) -> tuple[Any, bool]:
    """``(module, built_on_meta)``. ``meta`` True: ``factory()`` under the meta device; False:
    with real weights; ``None``: on the meta device first, and again with real weights when it
    has at most ``threshold`` parameters."""
    torch = torch_module()
    if meta is False:
        return factory(), False
    with torch.device("meta"):
        module = factory()
    count = parameter_count(module)
    if count > LARGEST:  # torch, and every tool that sums numel(), would overflow
        raise SpecError(f"the model has {count:.3g} parameters, more than a 64-bit count holds "
                        f"({LARGEST:,}); its sizes overflow")
    if meta or count > threshold:
        return module, True
    del module
    return factory(), False


def on_meta_device(module: Any) -> bool:
    """Whether ``module``'s weights are shapes only (built under the meta device)."""
    first = next(iter(module.parameters()), None)
    return first is not None and first.device.type == "meta"


__all__ = ["build_sized", "on_meta_device", "parameter_count"]
