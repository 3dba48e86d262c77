"""A small model's recorded forward, run for real on the CPU where that is cheaper than meta.

On the meta device torch computes most ops' output shapes in Python (0.1-4 ms an op, layer
norm 4 ms): a two-layer transformer's recorded forward took 50-70 ms on meta, where its real
CPU forward takes 1-4 ms. A forward that runs on meta gives the same shapes on real zeros,
and the MAC counter counts the same ops at the same shapes, so the hook recorder may run a
small CPU model for real first.

A forward that reads tensor values (``.item()``, ``if mask.all()``, ``nonzero``: transformers'
mask helpers all do) cannot run on meta at all: there such an op raises, and the forward is
then recorded by a real run on zeros. The real try on zeros *is* that run, so it goes on
through value reads rather than giving up at the first one only for meta to fail at the same
read (GPT-2, Llama, BART and Whisper were recorded three times on a first analysis, twice on
every later one). Only code that branches on the device itself (``if x.is_meta``) could run
another way on meta; this run records what torch does on the module's own device.

:class:`RealRunGuard` (a dispatch mode) keeps that run from costing what the meta run would
not: before any op that writes into one of its arguments runs, it gives up if the argument
shares storage with one of the model's parameters or buffers (nothing the user owns is
changed); and after each op it gives up once the run has made more than ``budget`` bytes of
tensors or done more than :data:`REAL_FIRST_MACS` multiply-accumulates (estimated from the
shapes, so the choice does not depend on the machine's load). The caller then runs the
forward on meta.
"""

from __future__ import annotations

import weakref
from typing import Any

from shapecalc.torch_bridge.measure import has_uninitialized, torch_module

#: The most parameters a model may have for its forward to be tried for real first: above
#: it, a real forward's compute, not Python, is what costs.
REAL_FIRST_PARAMETERS = 40_000_000
#: The most multiply-accumulates a real first try may do (10-20 ms of one CPU core). Measured
#: on the corpus's hook-route timm models at 224×224 (CPU ms, real first → meta only):
#: efficientvit_b0 (0.1 G MACs) 140 → 279; at a 0.5 G budget the 0.24-0.41 G models gained
#: 0-15 %, and the models that gave up lost 20-45 % (crossvit_tiny_240 343 → 261): what a
#: try that gives up costs grows with this budget.
REAL_FIRST_MACS = 150_000_000


class GaveUp(Exception):
    """The real run would write into the model's own tensors or cost more than it saves.
    ``every_time``: the reason does not depend on the input's size (the model's own code
    writes its tensors), so the same module is not tried for real again."""

    def __init__(self, message: str, every_time: bool = False) -> None:
        super().__init__(message)
        self.every_time = every_time


#: Modules whose real try gave up for a reason their code gives at any size (weakly held:
#: the user's model is never kept alive by this): analysing one again goes to meta at once,
#: not through a real try that stops at the same write.
_NOT_FOR_REAL: "weakref.WeakSet[Any]" = weakref.WeakSet()


def remember(module: Any, err: Exception) -> None:
    """Note ``module`` as not worth a real try when ``err`` says so for every input."""
    if isinstance(err, GaveUp) and err.every_time:
        try:
            _NOT_FOR_REAL.add(module)
        except TypeError:  # a module that cannot be weakly referenced is simply tried again
            pass


def owned_tensors(module: Any) -> tuple[list, list]:
    """``module``'s parameters and buffers, each once, read in one walk of its tree (the
    real-first choice and the guard both need them; each ``parameters()`` walk costs about
    as much as this whole one)."""
    params: list = []
    buffers: list = []
    seen: set[int] = set()
    for sub in module.modules():
        for found, kept in ((sub._parameters, params), (sub._buffers, buffers)):
            for t in found.values():
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    kept.append(t)
    return params, buffers


def cheaper_for_real(module: Any, input_bytes: int, budget: int,
                     owned: tuple[list, list] | None = None) -> bool:
    """Whether ``module``'s forward is worth trying for real first: real weights on the CPU,
    few of them, and inputs well inside the real-run budget. A lazy module that never ran is
    not: a real forward would give the user's module its weights. ``owned``: its
    :func:`owned_tensors`, if already read."""
    if input_bytes * 4 > budget or module in _NOT_FOR_REAL:
        return False
    params, buffers = owned or owned_tensors(module)
    if has_uninitialized(module, params + buffers):
        return False
    return (all(p.device.type == "cpu" for p in params)
            and sum(p.numel() for p in params) <= REAL_FIRST_PARAMETERS)


def real_run_guard(module: Any, budget: int, macs: int | None = None,
                   owned: tuple[list, list] | None = None) -> Any:
    """A :class:`RealRunGuard` for one forward of ``module`` (``with guard: module(*xs)``);
    ``macs`` defaults to :data:`REAL_FIRST_MACS`; ``owned``: its :func:`owned_tensors`."""
    params, buffers = owned or owned_tensors(module)
    return _guard_class()(params + buffers, budget, REAL_FIRST_MACS if macs is None else macs)


def _guard_class() -> type:
    global _GUARD
    if _GUARD is not None:
        return _GUARD
    torch = torch_module()
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    # Products: the argument whose last axis is summed over (torch's FLOP formulas go through
    # pytree and cost more than the op here). Every other op: one step an output element.
    products = {aten.mm: 0, aten.bmm: 0, aten.addmm: 1, aten.baddbmm: 1}
    convolutions = {aten.convolution, aten._convolution}
    writes: dict[Any, tuple[int, ...]] = {}  # op overload → the arguments it writes into

    class RealRunGuard(TorchDispatchMode):
        def __init__(self, owned: list, budget: int, macs: int) -> None:
            super().__init__()
            self.owned = {t.untyped_storage().data_ptr() for t in owned} - {0}  # 0: empty
            self.budget, self.made = budget, 0
            self.macs_left = macs
            #: Called as ``observer(op, args, kwargs, output)`` after every op while set (the
            #: hook recorder's MAC counter: one dispatch mode on every op instead of two).
            self.observer: Any = None

        def _written(self, func: Any) -> tuple[int, ...]:
            found = writes.get(func)
            if found is None:
                found = tuple(i for i, a in enumerate(func._schema.arguments)
                              if a.alias_info is not None and a.alias_info.is_write)
                writes[func] = found
            return found

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            written = self._written(func)
            if written:
                schema = func._schema.arguments
                for i in written:
                    value = args[i] if i < len(args) else kwargs.get(schema[i].name)
                    for t in value if isinstance(value, (tuple, list)) else (value,):
                        if isinstance(t, torch.Tensor) and \
                                t.untyped_storage().data_ptr() in self.owned:
                            raise GaveUp(f"the forward writes into the model's own tensors ({func})",
                                         every_time=True)
            out = func(*args, **kwargs)
            for o in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(o, torch.Tensor) and not o._is_view():
                    self.made += o.numel() * o.element_size()
            if self.made > self.budget:
                raise GaveUp("the forward makes more tensors than a real run may")
            self.macs_left -= _work(func._overloadpacket, args, out)
            if self.macs_left < 0:
                raise GaveUp("the forward computes more for real than the meta device costs")
            if self.observer is not None:
                self.observer(func, args, kwargs, out)
            return out

    def _work(packet: Any, args: tuple, out: Any) -> int:
        first = out[0] if isinstance(out, (tuple, list)) and out else out
        size = first.numel() if isinstance(first, torch.Tensor) else 0
        if packet in products:
            return size * args[products[packet]].shape[-1]
        if packet in convolutions:
            return size * args[1][0].numel()  # in-channels per group × kernel
        return size

    _GUARD = RealRunGuard
    return RealRunGuard


_GUARD: type | None = None

__all__ = ["GaveUp", "REAL_FIRST_PARAMETERS", "cheaper_for_real", "owned_tensors", "real_run_guard",
           "remember"]
