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

A dispatch mode costs about 10 µs on every op (torch calls back into Python for each), which
was a third of a small transformer's analysis. Under a hook recording, whose function mode
sees every torch function and tensor method the forward's Python code calls, the guard is
therefore entered only around the calls that need it (:attr:`RealRunGuard.per_call`): the
recorder calls the ones that cannot write into an argument (:func:`unwatched`: views,
element-wise ops, products, unless asked with ``out=``/``inplace=True`` or spelt in place)
directly and hands their outputs to :meth:`RealRunGuard.account`, which keeps the budgets from
each call's outputs (a call's inner temporaries are not counted, so such a run stops later
than one watched op by op). What a function mode cannot see (a TorchScript function, a C++
extension called directly) is caught by the version counter every owned tensor carries: read
before and after the run (:meth:`RealRunGuard.unchanged`), a changed tensor is put back from
the copy taken first, and the run gives up as for a watched write. That copy is why only a
model of at most :data:`PER_CALL_MAX_BYTES` is run this way. A write there that bumps no
version counter is not caught: through ``.data`` (a fresh counter) inside TorchScript, or a C++
extension writing to the memory itself, which the whole-run guard did not see either.
(Comparing every tensor with its copy would catch them, at 0.3 ms on a small Llama: 7 % of
its analysis.)

A run that stopped over budget is not tried again at the same inputs (:func:`remember`): a
try stopped halfway costs as much again as the meta run that answers.
"""

from __future__ import annotations

import math
import weakref
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from shapecalc.torch_bridge.mac_count import MAC_FREE_OPS
from shapecalc.torch_bridge.measure import has_uninitialized, torch_module

#: The most parameters a model may have for its forward to be tried for real first: above
#: it, a real forward's compute, not Python, is what costs.
REAL_FIRST_PARAMETERS = 40_000_000
#: The most bytes of parameters and buffers a real run under the per-call guard copies first
#: (what it restores should code no function mode sees write into them): a small transformer's
#: 2-4 MB copy in 0.07-0.17 ms; above this, every op is watched as before (efficientvit_b0's
#: 14 MB in 197 tensors took 4 ms to copy, more than watching its few hundred ops costs).
PER_CALL_MAX_BYTES = 8 * 2**20
#: The most multiply-accumulates a real first try may do (10-20 ms of one CPU core). Measured
#: on the corpus's hook-route timm models at 224×224 (CPU ms, real first → meta only):
#: efficientvit_b0 (0.1 G MACs) 140 → 279; at a 0.5 G budget the 0.24-0.41 G models gained
#: 0-15 %, and the models that gave up lost 20-45 % (crossvit_tiny_240 343 → 261): what a
#: try that gives up costs grows with this budget.
REAL_FIRST_MACS = 150_000_000


#: Work per output element of a product called unwatched (the guard's rule for each op: the
#: length of the axis summed over), and how many leading positional arguments it reads:
#: ``linear(x, weight)``, ``matmul(a, b)``, ``addmm(bias, a, b)``, ``conv2d(x, weight)``;
#: attention's two products (query·keyᵀ, then the weights·values) sum over the keys twice.
_CALL_WORK: dict[str, tuple[int, Callable[[tuple], int]]] = {
    "linear": (2, lambda args: args[1].shape[-1]),
    "matmul": (2, lambda args: args[0].shape[-1]),
    "mm": (2, lambda args: args[0].shape[-1]),
    "bmm": (2, lambda args: args[0].shape[-1]),
    "addmm": (3, lambda args: args[1].shape[-1]),  # addmm(bias, x, weight): GPT-2's Conv1D
    "baddbmm": (3, lambda args: args[1].shape[-1]),
    "conv1d": (2, lambda args: math.prod(args[1].shape[1:])),
    "conv2d": (2, lambda args: math.prod(args[1].shape[1:])),
    "conv3d": (2, lambda args: math.prod(args[1].shape[1:])),
    "scaled_dot_product_attention": (3, lambda args: 2 * args[1].shape[-2]),
}
#: Calls (their recorder labels) that write into no argument unless asked to with ``out=`` or
#: ``inplace=True`` or spelt in place (``add_``; the in-place operators ``+=`` are left out):
#: those a real run may call without its guard.
_UNWATCHED = (MAC_FREE_OPS - {"iadd", "imul", "isub"}) | set(_CALL_WORK) | {
    "layer_norm", "group_norm", "rms_norm", "hardswish", "hardsigmoid", "leaky_relu", "elu",
    "mish", "softplus", "erf", "log", "adaptive_avg_pool2d", "avg_pool2d", "max_pool2d",
}


def attribute_read(func: Any) -> bool:
    """Whether a call the recorder sees is a tensor attribute read (``x.shape``, ``x.T``): it
    writes nothing and multiplies nothing."""
    return getattr(func, "__name__", None) == "__get__"


def unwatched(func: Any, label: str, args: tuple, kwargs: dict) -> bool:
    """Whether a torch function or tensor method the forward calls can run without the
    guard: one of :data:`_UNWATCHED`, not spelt in place, nor asked to write (``out=``,
    ``inplace=True``), a product with its operands as positional arguments, or an
    attribute read (``x.shape``, ``x.T``)."""
    if attribute_read(func):
        return True
    base = getattr(func, "__name__", "").split(".", 1)[0]  # ``add_.Tensor``: an OpOverload
    if label not in _UNWATCHED or (base.endswith("_") and not base.endswith("__")):
        return False
    if kwargs and (kwargs.get("out") is not None or kwargs.get("inplace")):
        return False
    work = _CALL_WORK.get(label)
    return work is None or len(args) >= work[0]


class GaveUp(Exception):
    """The real run would write into the model's own tensors or cost more than it saves.
    ``every_time``: the reason does not depend on the input's size (the model's own code
    writes its tensors), so the same module is not tried for real again; ``over_budget``:
    the run cost more than a real try may at these inputs, so it is not tried again at them."""

    def __init__(self, message: str, every_time: bool = False, over_budget: bool = False) -> None:
        super().__init__(message)
        self.every_time = every_time
        self.over_budget = over_budget


class Unseen(GaveUp):
    """A module measured under the per-call guard used or returned a tensor no call the
    recorder saw made (TorchScript or a C++ extension ran inside): its work may not all have
    been counted, so the run is made again with the guard on every op."""


#: Modules whose real try gave up for a reason their code gives at any size (weakly held:
#: the user's model is never kept alive by this): analysing one again goes to meta at once,
#: not through a real try that stops at the same write.
_NOT_FOR_REAL: "weakref.WeakSet[Any]" = weakref.WeakSet()
#: Modules whose real try ran over its budget, with the inputs (a hashable key) it did at:
#: a real try that stops halfway costs as much again as the meta run that follows it
#: (wav2vec2's 221 M MACs at 150 M before giving up), so it is not made twice.
_OVER_BUDGET: "weakref.WeakKeyDictionary[Any, set]" = weakref.WeakKeyDictionary()


def remember(module: Any, err: Exception, inputs: Any = None) -> None:
    """Note ``module`` as not worth a real try when ``err`` says so for every input, or for
    ``inputs`` (a key such as the shapes, dtypes and mode) when it ran over budget there."""
    if not isinstance(err, GaveUp):
        return
    try:
        if err.every_time:
            _NOT_FOR_REAL.add(module)
        elif err.over_budget and inputs is not None:
            _OVER_BUDGET.setdefault(module, set()).add(inputs)
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
                     owned: tuple[list, list] | None = None, inputs: Any = None) -> bool:
    """Whether ``module``'s forward is worth trying for real first: real weights on the CPU,
    few of them, and inputs well inside the real-run budget. A lazy module that never ran is
    not: a real forward would give the user's module its weights. ``owned``: its
    :func:`owned_tensors`, if already read; ``inputs``: the key :func:`remember` was given."""
    if input_bytes * 4 > budget or module in _NOT_FOR_REAL:
        return False
    try:
        if inputs is not None and inputs in _OVER_BUDGET.get(module, ()):
            return False
    except TypeError:  # not weakly referenceable: never remembered
        pass
    params, buffers = owned or owned_tensors(module)
    if has_uninitialized(module, params + buffers):
        return False
    return (all(p.device.type == "cpu" for p in params)
            and sum(p.numel() for p in params) <= REAL_FIRST_PARAMETERS)


def real_run_guard(module: Any, budget: int, macs: int | None = None,
                   owned: tuple[list, list] | None = None, per_call: bool = False) -> Any:
    """A :class:`RealRunGuard` for one forward of ``module`` (``with guard: module(*xs)``);
    ``macs`` defaults to :data:`REAL_FIRST_MACS`; ``owned``: its :func:`owned_tensors`.
    ``per_call``: a hook recording may enter it only around the calls that need it, where
    the model's tensors are few enough to copy first (:data:`PER_CALL_MAX_BYTES`)."""
    params, buffers = owned or owned_tensors(module)
    guard = _guard_class()(params + buffers, budget, REAL_FIRST_MACS if macs is None else macs)
    guard.per_call = per_call and not any(t.is_inference() for t in guard.tensors) and \
        sum(t.numel() * t.element_size() for t in guard.tensors) <= PER_CALL_MAX_BYTES
    return guard


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
        #: A hook recording may enter this guard only around the calls that need it (the
        #: module docstring says why and what watches the rest): :func:`real_run_guard` says.
        per_call = False

        def __init__(self, owned: list, budget: int, macs: int) -> None:
            super().__init__()
            self.tensors = owned
            self.ids = {id(t) for t in owned}
            self.owned = {t.untyped_storage().data_ptr() for t in owned} - {0}  # 0: empty
            self.budget, self.made = budget, 0
            self.macs_left = macs
            #: Called as ``observer(op, args, kwargs, output)`` after every op while set (the
            #: hook recorder's MAC counter: one dispatch mode on every op instead of two).
            self.observer: Any = None

        @contextmanager
        def unchanged(self) -> Iterator[None]:
            """The forward inside writes nothing of the model's that stays written: every
            owned tensor is copied first and its version counter read (torch bumps it on
            every write, watched or not); one that changed is put back and the run gives up.
            Only under the per-call guard: the whole-run guard refuses a write before it runs."""
            if not self.per_call:
                yield
                return
            with torch.no_grad(), torch._C.DisableTorchFunction():  # not the recording's
                kept = [(t, t._version, t.clone()) for t in self.tensors]
            try:
                yield
            finally:
                with torch._C.DisableTorchFunction():
                    changed = [(t, copy) for t, version, copy in kept if t._version != version]
                if changed:
                    with torch.no_grad(), torch._C.DisableTorchFunction():
                        for t, copy in changed:
                            t.copy_(copy)
                    raise GaveUp("the forward writes into the model's own tensors where the "
                                 "recorder cannot watch it", every_time=True)

        def account(self, label: str, args: tuple, out: Any) -> None:
            """Add a call run unwatched (:func:`unwatched`) to the budgets: the tensors it
            returned (not a view, nor its input handed back) and its work, estimated from
            its outputs as the dispatch path estimates each op's."""
            first = self._made(out, args[0] if args else None)
            if first is not None:
                work = _CALL_WORK.get(label)
                self._worked(first.numel() * (work[1](args) if work else 1))

        def _made(self, out: Any, handed_back: Any = None) -> Any:
            """Add the tensors ``out`` holds (not views, nor ``handed_back``, an input returned
            as it was) to the bytes made, giving up over budget; the first tensor, if any."""
            first = None
            for o in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(o, torch.Tensor):
                    if first is None:
                        first = o
                    if not o._is_view() and o is not handed_back:
                        self.made += o.numel() * o.element_size()
            if self.made > self.budget:
                raise GaveUp("the forward makes more tensors than a real run may", over_budget=True)
            return first

        def _worked(self, macs: int) -> None:
            """Spend ``macs`` of the work budget, giving up once it is gone."""
            self.macs_left -= macs
            if self.macs_left < 0:
                raise GaveUp("the forward computes more for real than the meta device costs",
                             over_budget=True)

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
            self._made(out)
            self._worked(_work(func._overloadpacket, args, out))
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

__all__ = ["GaveUp", "PER_CALL_MAX_BYTES", "REAL_FIRST_PARAMETERS", "Unseen", "attribute_read",
           "cheaper_for_real", "owned_tensors", "real_run_guard", "remember", "unwatched"]
