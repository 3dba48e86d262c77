"""What one forward ran, in order: its recorded modules and the torch functions between them.

The hook fallback (``fx_hooks``) needs more than module hooks can see: work a model's own code
does between its modules (attention's ``q @ k.transpose(-2, -1)``, timm's ``F.conv2d`` with
"same" padding, a ``torch.cat``) happens in no leaf module. As torchview does, a
``TorchFunctionMode`` sees every torch function the forward's own code calls; calls made
inside a recorded module belong to that module and are not recorded again. Below it, one
dispatch mode per run (:meth:`Recording.observing`: on meta the
:mod:`~shapecalc.torch_bridge.meta_memo`, which answers meta ops it has seen, as a deep model
repeats its layers' ops; in a real run the :mod:`~shapecalc.torch_bridge.real_run` guard)
hands the ops of every call whose MACs no rule gives to a
:func:`~shapecalc.torch_bridge.mac_count.mac_counter`: torch's own count of the
multiply-accumulates (``None`` where torch has no formula).

A real run's guard may be *per call* (:attr:`~.real_run.RealRunGuard.per_call`): it is then
entered only around what needs it, a call that may write or whose MACs are counted (attention's
come from torch's formula for it instead), while a counted module's calls are traced so that
work the function mode cannot see (TorchScript) sends the run back to the whole-run guard.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Iterator

from shapecalc.torch_bridge.mac_count import MAC_FREE_OPS, attention_macs
from shapecalc.torch_bridge.measure import torch_module
from shapecalc.torch_bridge.real_run import Unseen, attribute_read, unwatched


@dataclass
class Call:
    """One recorded call: a module (``module`` set) or a torch function (``module`` None)."""

    path: str  # module path, or owner path + function label for a function
    module: Any
    label: str
    inputs: tuple
    output: Any = None  # None while the call runs (or when torch refused it)
    macs: int | None = 0
    mark: tuple = field(default=(0, 0), repr=False)
    args: tuple = field(default=(), repr=False)  # a function's own arguments (its layer's)
    kwargs: dict = field(default_factory=dict, repr=False)
    #: Tensors autograd saved while the call ran (a run with ``Recording(saving=True)``).
    saved: list = field(default_factory=list, repr=False)
    node: str = ""  # the graph node made of it


def _tensors(values: Any, torch: Any, depth: int = 2) -> list:
    """Tensors among call arguments: top level, and inside lists/tuples/dicts (``torch.cat``)."""
    found = []
    for v in values:
        if isinstance(v, torch.Tensor):
            found.append(v)
        elif depth and isinstance(v, (tuple, list)):
            found.extend(_tensors(v, torch, depth - 1))
        elif depth and isinstance(v, dict):
            found.extend(_tensors(v.values(), torch, depth - 1))
    return found


def function_label(func: Any) -> str:
    """``matmul``, ``add`` (for ``__add__``), ``T`` (for the ``Tensor.T`` property)."""
    name = getattr(func, "__name__", None) or type(func).__name__
    if name == "__get__":  # a property read (``x.T``, ``x.mT``)
        name = getattr(getattr(func, "__self__", None), "__name__", name)
    return name.strip("_") or name




def _free(func: Any, label: str) -> bool:
    """No matrix product can run inside the call: one of :data:`MAC_FREE_OPS`, or an attribute
    read (``x.shape``, ``x.dtype``: a third of the calls of a transformer's own code). It runs
    without the MAC counter."""
    return label in MAC_FREE_OPS or attribute_read(func)


def _function_mode_class() -> type:
    """The function mode that hands every torch call to its recording, made once (a class
    made per recording cost more than registering its hooks)."""
    global _FUNCTION_MODE
    if _FUNCTION_MODE is None:
        from torch.overrides import TorchFunctionMode

        class FunctionMode(TorchFunctionMode):
            def __init__(self, recording: "Recording") -> None:
                super().__init__()
                self.recording = recording

            def __torch_function__(self, func, types, args=(), kwargs=None):
                return self.recording._function(func, args, kwargs or {})

        _FUNCTION_MODE = FunctionMode
    return _FUNCTION_MODE


_FUNCTION_MODE: type | None = None


class Recording:
    """``with recording, recording.observing(): root(x)`` leaves :attr:`calls` in call order.

    ``counted`` holds the ids of recorded modules the engine has no rule for: only their calls
    (and those with several tensor inputs) run under the MAC counter; the others' MACs come
    from the rule, and their ``macs`` stay ``None``."""

    def __init__(self, root: Any, recorded: list[tuple[str, Any]], counted: set[int],
                 saving: bool = False) -> None:
        self.root = root
        self.saving = saving  # attribute what autograd saves to the call running
        self.saved_by_function: list | None = None  # a torch function's, while it runs
        self.recorded = recorded
        self.counted = counted
        self.counting = False  # the counter is entered for the module call now running
        self.calls: list[Call] = []
        self.started: list[Call] = []  # recorded module calls, in the order they began
        self.finished = 0  # how many of them returned (recorded modules never nest)
        self.owners: list[str] = []  # paths of the unrecorded modules now running
        self.depth = 0  # recorded modules now running (their insides are theirs)
        self.forward = False  # the root's forward is running (not the meta set-up around it)
        self.handles: list = []
        self.modes: list = []
        #: The dispatch mode the forward now runs under (:meth:`observing`).
        self.dispatch: Any = None
        #: A real run's guard while it is not entered: it is entered only around the calls
        #: and counted modules that need it (``real_run``'s docstring says why).
        self.unentered: Any = None
        #: Under the per-call guard, the tensors a counted module was given or made by calls
        #: the recorder saw (kept alive, so an id is never reused while it runs).
        self.traced: dict[int, Any] | None = None

    def clear(self) -> None:
        """Forget a run (the forward is retried for real after meta refused it)."""
        self._stop_counting()
        self.calls.clear()
        self.started.clear()
        self.finished = 0
        self.owners.clear()
        self.depth = 0
        self.forward = False

    def running(self) -> Call | None:
        """The recorded module torch was running when it raised, if any."""
        return self.started[self.finished] if len(self.started) > self.finished else None

    # ------------------------------------------------------------------ hooks
    def _pre(self, m: Any, args: tuple, kwargs: dict, path: str) -> None:
        torch = torch_module()
        inputs = tuple(_tensors(args, torch, 0)) + tuple(_tensors(kwargs.values(), torch, 0))
        call = Call(path, m, type(m).__name__, inputs, macs=None)
        if id(m) in self.counted or len(inputs) != 1:
            # The counter counts every op the dispatch mode sees from now on; under the
            # per-call guard, that is each call of this module that is not free of MACs.
            self.dispatch.observer = self.counter.count
            self.counting = True
            call.mark = self.counter.mark()
            if self.unentered is not None:
                self.traced = {id(t): t for t in _tensors((args, kwargs), torch, 3)}
        self.started.append(call)
        self.depth += 1

    def _post(self, m: Any, args: tuple, kwargs: dict, out: Any) -> None:
        self.depth -= 1
        call = self.started[self.finished]
        self.finished += 1
        call.output = out
        if self.counting:
            if self.traced is not None:
                self._trace(out)
            call.macs = self.counter.since(call.mark)
            self._stop_counting()
        self.calls.append(call)

    def _stop_counting(self) -> None:
        if self.counting:
            self.dispatch.observer = None
            self.counting = False
        self.traced = None

    def _trace(self, *values: Any) -> None:
        """Under the per-call guard, a counted module's work is counted only in the calls the
        recorder sees: a tensor it uses or returns that none of them made, nor its input nor
        the model's own, was made where no function mode looks (TorchScript, a C++
        extension), whose work went uncounted."""
        torch = torch_module()
        for t in _tensors(values, torch, 3):
            if id(t) not in self.traced and id(t) not in self.unentered.ids:
                raise Unseen(f"a tensor of {tuple(t.shape)} came from code the recorder "
                             "cannot see")

    def _enter_guard(self) -> Any:
        guard, self.unentered = self.unentered, None
        guard.__enter__()
        return guard

    def _leave_guard(self, guard: Any) -> None:
        guard.__exit__(None, None, None)
        self.unentered = guard

    def _watched(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """``func`` in a real run whose guard is not entered: around it, the guard."""
        guard = self._enter_guard()
        try:
            return func(*args, **kwargs)
        finally:
            self._leave_guard(guard)

    def _unwatched_or_not(self, func: Any, label: str, args: tuple, kwargs: dict) -> Any:
        """``func`` in a real run whose guard is not entered: directly, its outputs added to
        the guard's budgets, if it cannot write into an argument; else watched."""
        if unwatched(func, label, args, kwargs):
            out = func(*args, **kwargs)
            self.unentered.account(label, args, out)
            return out
        return self._watched(func, args, kwargs)

    # A hook that returns a value replaces the module's input or output: these return None.
    def _enter_owner(self, path: str) -> None:
        self.owners.append(path)

    def _leave_owner(self, m: Any, args: tuple, out: Any) -> None:
        if self.owners:
            self.owners.pop()

    def _root(self, running: bool) -> None:
        self.forward = running

    def _function(self, func: Any, args: tuple, kwargs: dict) -> Any:
        if self.dispatch is None:  # outside a run (a forward that raised left ``forward`` set)
            return func(*args, **kwargs)
        if self.depth or not self.forward:
            if self.unentered is None:
                return func(*args, **kwargs)
            if not self.forward:  # hooks around the root's forward: rare, watched
                return self._watched(func, args, kwargs)
            label = function_label(func)
            if self.traced is None:
                return self._unwatched_or_not(func, label, args, kwargs)
            # A counted module's call: traced, and counted unless free of MACs.
            self._trace(args, kwargs)
            out = self._unwatched_or_not(func, label, args, kwargs) if _free(func, label) \
                else self._watched(func, args, kwargs)
            for t in _tensors((out,), torch_module(), 3):
                self.traced[id(t)] = t
            return out
        torch = torch_module()
        label = function_label(func)
        saved = self.saved_by_function = [] if self.saving else None
        try:
            if _free(func, label):
                out = func(*args, **kwargs) if self.unentered is None else \
                    self._unwatched_or_not(func, label, args, kwargs)
                macs = 0
            elif label == "scaled_dot_product_attention" and self.unentered is not None and \
                    len(args) >= 3 and (macs := attention_macs(args)) is not None:
                out = self._unwatched_or_not(func, label, args, kwargs)
            else:
                guard = self._enter_guard() if self.unentered is not None else None
                self.dispatch.observer, mark = self.counter.count, self.counter.mark()
                try:
                    out = func(*args, **kwargs)
                finally:
                    self.dispatch.observer = None
                    if guard is not None:
                        self._leave_guard(guard)
                macs = self.counter.since(mark)
        finally:
            self.saved_by_function = None
        if isinstance(out, torch.Tensor) or (isinstance(out, (tuple, list)) and any(
                isinstance(v, torch.Tensor) for v in out)):
            owner = self.owners[-1] if self.owners else ""
            inputs = tuple(_tensors(args, torch)) + tuple(_tensors(kwargs.values(), torch))
            self.calls.append(Call(f"{owner}.{label}" if owner else label, None, label, inputs,
                                   out, macs, args=args, kwargs=kwargs, saved=saved or []))
        return out

    def _pack(self, tensor: Any) -> Any:
        """autograd's pack hook: the tensor goes to the call running (held, so its storage
        stays unique); saved by the forward's own code outside any call, nowhere."""
        if self.saved_by_function is not None:
            self.saved_by_function.append(tensor)
        elif self.depth and len(self.started) > self.finished:
            self.started[self.finished].saved.append(tensor)
        return tensor

    @contextmanager
    def observing(self, mode: Any = None) -> Iterator[Any]:
        """One run of the forward under ``mode`` (a fresh meta memo if ``None``), a dispatch
        mode with an ``observer`` slot: every op goes through it anyway, so it hands the
        counter the ops of each counted call. One mode, not a counter or memo beside a
        real run's guard: each dispatch mode costs ~10 µs on every op of a small model."""
        if mode is None:
            from shapecalc.torch_bridge.meta_memo import meta_memo

            mode = meta_memo()
        self.dispatch = mode
        per_call = getattr(mode, "per_call", False)  # a real run's guard: entered where needed
        if per_call:
            self.unentered = mode
        try:
            with nullcontext() if per_call else mode:
                yield mode
        finally:
            self._stop_counting()  # a module torch refused never reached its post-hook
            self.dispatch = self.unentered = None

    def __enter__(self) -> "Recording":
        from shapecalc.torch_bridge.mac_count import mac_counter

        # The counter is not a mode of its own: the run's dispatch mode (:meth:`observing`)
        # hands it each op while a call is counted.
        self.counter = mac_counter()
        recorded = {id(m) for _, m in self.recorded}
        for path, sub in self.recorded:
            self.handles.append(sub.register_forward_pre_hook(
                lambda m, a, k, path=path: self._pre(m, a, k, path), with_kwargs=True))
            self.handles.append(sub.register_forward_hook(self._post, with_kwargs=True))
        self.handles.append(self.root.register_forward_pre_hook(lambda m, a: self._root(True)))
        self.handles.append(self.root.register_forward_hook(lambda m, a, o: self._root(False)))
        inside = tuple(p + "." for p, _ in self.recorded)
        for path, sub in self.root.named_modules():
            if path and id(sub) not in recorded and not path.startswith(inside):
                self.handles.append(sub.register_forward_pre_hook(
                    lambda m, a, path=path: self._enter_owner(path)))
                self.handles.append(sub.register_forward_hook(self._leave_owner))
        self.modes = [_function_mode_class()(self)]
        if self.saving:
            self.modes.insert(0, torch_module().autograd.graph.saved_tensors_hooks(
                self._pack, lambda t: t))
        for mode in self.modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        for mode in reversed(self.modes):
            mode.__exit__(None, None, None)
        self.modes = []
        for handle in self.handles:
            handle.remove()
        self.handles = []
