"""Forwards the fx tracer records directly instead of running them: the same nodes, fewer steps.

timm wraps almost every CNN's BatchNorm in ``BatchNormAct2d``, a copy of
``nn.BatchNorm2d.forward`` with an activation after it. Tracing it runs its Python: a rank
check (three nodes that give no row), the momentum logic, and ``F.batch_norm`` through
``__torch_function__`` dispatch; that was a third of a timm CNN's trace. In eval mode its
forward always records ``F.batch_norm(x, running_mean, running_var, weight, bias, False,
momentum, eps)``, then its ``drop`` and ``act`` modules, so the tracer records exactly those
(fx's module bookkeeping around the call is kept: rows are named as before).

A module qualifies only when nothing could make its forward differ: that exact class and
forward from timm, eval mode, running statistics present, one tensor argument, no hooks.
"""

from __future__ import annotations

from typing import Any, Callable

_NORM_ACT = ("timm.layers.norm_act", "BatchNormAct2d")


def recorded_forwards(modules: Any, training: bool) -> dict[int, Callable[..., Any]]:
    """id(module) → ``record(tracer, module, x)`` for the modules whose forward is recorded
    directly (none in train mode: the training branch updates the statistics)."""
    if training:
        return {}
    found: dict[int, Callable[..., Any]] = {}
    for m in modules:
        cls = type(m)
        forward = getattr(cls, "forward", None)
        if (cls.__module__, cls.__name__) != _NORM_ACT or "forward" in m.__dict__ \
                or getattr(forward, "__qualname__", "") != "BatchNormAct2d.forward" \
                or getattr(forward, "__module__", "") != _NORM_ACT[0]:
            continue
        if m._forward_hooks or m._forward_pre_hooks or m.running_mean is None \
                or m.running_var is None or not m.track_running_stats:
            continue
        found[id(m)] = _norm_act
    return found


def _norm_act(tracer: Any, m: Any, x: Any) -> Any:
    """``BatchNormAct2d.forward`` in eval mode, as fx would record it (less its rank check)."""
    import torch.nn.functional as F

    momentum = 0.0 if m.momentum is None else m.momentum
    # Attribute reads go through fx's patched Module.__getattr__, as in the real forward.
    out = tracer.create_proxy("call_function", F.batch_norm,
                              (x, m.running_mean, m.running_var, m.weight, m.bias, False, momentum,
                               m.eps), {})
    return m.act(m.drop(out))


__all__ = ["recorded_forwards"]
