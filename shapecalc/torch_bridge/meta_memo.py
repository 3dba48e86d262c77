"""Meta kernels answered once per distinct call: a big transformer's forward on meta in a fraction.

On the meta device an op computes only its output's shape, strides and element type, yet torch
computes that for most element-wise ops, norms and reductions in Python (its ``_refs`` and
decompositions, 0.1-4 ms an op). The 126 identical layers of a 405B-shaped Llama run the
same few dozen ops at the same shapes: 7,300 of its 7,350 ops repeat one already seen, and
three quarters of the forward's time went to answering them again.

An op on meta tensors is a pure function of its arguments' metadata (there are no values to
read), so :class:`MetaMemo`, a dispatch mode, keeps the output metadata of every call it sees
by (op, each argument's shape, strides, offset and element type, every other argument's type
and value), and answers a repeat with fresh ``empty_strided`` meta tensors of that metadata.
Only ops that return new tensors are kept: an op that writes into an argument or returns a
view of one (its storage is shared: the saved-activation account relies on that) always runs,
and so does any call with a real tensor, a tensor subclass or an argument it cannot key on.

Before the memo, a few ops whose output metadata is a simple function of their inputs' (batch
and layer norm, activations, same-shape arithmetic: :mod:`~shapecalc.torch_bridge.meta_rules`)
are answered by rule, without torch's Python kernel even once. The first answer of each kind
(op, and each tensor argument's element type, rank and contiguity) in a process is checked
against torch's own kernel; a kind that differs is never answered by rule again.
"""

from __future__ import annotations

from typing import Any, Callable

_SCALARS = (int, float, bool, str, type(None))


class _Unkeyed(Exception):
    """An argument the memo cannot key on (a real tensor, a symbolic size, an object)."""


def _memo_class() -> type:
    """The dispatch-mode class, made once torch is imported (this module never imports it)."""
    global _MEMO
    if _MEMO is not None:
        return _MEMO
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    plain = (torch.Tensor, torch.nn.Parameter)
    values = _SCALARS + (torch.dtype, torch.device, torch.memory_format, torch.layout)
    complex_types = {torch.complex32, torch.complex64, torch.complex128}
    fresh_ops: dict[Any, bool] = {}  # op overload → returns only new tensors (its schema says)
    from shapecalc.torch_bridge.meta_rules import rules

    ruled_ops = rules()
    rule_checked: dict[tuple, bool] = {}  # kind of call → the rule gave torch's answer

    def layout_of(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return (value.dtype, value.dim(), value.is_contiguous())
        return None

    def metadata_of(out: Any) -> Any:
        outs = out if isinstance(out, tuple) else (out,)
        return tuple((o.shape, o.stride(), o.storage_offset(), o.dtype, o.device) for o in outs)

    def key_of(value: Any) -> Any:
        kind = type(value)
        if kind in plain:
            # Complex tensors carry conjugate/negative bits the key does not hold: never kept.
            if not value.is_meta or value.layout is not torch.strided or value.dtype in complex_types:
                raise _Unkeyed
            return (value.shape, value.stride(), value.storage_offset(), value.dtype)
        if kind in values:
            return (kind, value)  # 2 and 2.0 (and True) promote differently
        if kind is tuple or kind is list:
            return (kind, *map(key_of, value))
        raise _Unkeyed

    class MetaMemo(TorchDispatchMode):
        """``with MetaMemo(): module(*meta_inputs)``; ``hits``/``misses`` say what it saved."""

        def __init__(self) -> None:
            super().__init__()
            self.outputs: dict[tuple, tuple] = {}
            self.hits = self.misses = self.ruled = 0
            #: Called as ``observer(op, args, kwargs, output)`` after every op while set (a
            #: MAC counter: one dispatch mode instead of two on every op it counts).
            self.observer: Callable[[Any, tuple, dict, Any], None] | None = None

        def _returns_fresh(self, func: Any) -> bool:
            fresh = fresh_ops.get(func)
            if fresh is None:
                schema = func._schema
                fresh = (not schema.is_mutable and bool(schema.returns)
                         and all(r.alias_info is None and str(r.type) == "Tensor"
                                 for r in schema.returns))
                fresh_ops[func] = fresh
            return fresh

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = self._run(func, args, kwargs)
            if self.observer is not None:
                self.observer(func, args, kwargs, out)
            return out

        def _run(self, func: Any, args: tuple, kwargs: dict) -> Any:
            rule = ruled_ops.get(func)
            if rule is not None:
                out = rule(args, kwargs)
                if out is not None:
                    kind = (func, *map(layout_of, args))
                    checked = rule_checked.get(kind)
                    if checked:
                        self.ruled += 1
                        return out
                    if checked is None:
                        real = self._memo_run(func, args, kwargs)
                        rule_checked[kind] = (metadata_of(real) == metadata_of(out) and (
                            self._returns_fresh(func) or real is args[0]))
                        return real
            return self._memo_run(func, args, kwargs)

        def _memo_run(self, func: Any, args: tuple, kwargs: dict) -> Any:
            if not self._returns_fresh(func):
                return func(*args, **kwargs)
            try:
                key = (func, key_of(args), key_of(tuple(kwargs.items())) if kwargs else None)
            except _Unkeyed:
                return func(*args, **kwargs)
            kept = self.outputs.get(key)
            if kept is not None:
                self.hits += 1
                several, metas = kept
                outs = tuple(torch.empty_strided(shape, stride, dtype=dtype, device="meta")
                             for shape, stride, dtype in metas)
                return outs if several else outs[0]
            self.misses += 1
            out = func(*args, **kwargs)
            several = isinstance(out, tuple)
            outs = out if several else (out,)
            if all(type(o) in plain and o.is_meta and o.storage_offset() == 0 and not o._is_view()
                   for o in outs):
                self.outputs[key] = (several, tuple((o.shape, o.stride(), o.dtype) for o in outs))
            return out

    _MEMO = MetaMemo
    return MetaMemo


_MEMO: type | None = None


def meta_memo() -> Any:
    """A fresh memo (a ``TorchDispatchMode``: ``with memo: ...``) for one forward on meta."""
    return _memo_class()()


__all__ = ["meta_memo"]
