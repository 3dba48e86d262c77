"""The ``torch.fx`` tracer that reads a user's module: it stops at modules the engine knows, and
records the same graph as ``torch.fx.Tracer`` at a lower cost per trace and per node.

Where the installed torch.fx is the vetted one, fx's work is done leaner (``fx_lean`` says
what and why: :class:`~shapecalc.torch_bridge.fx_lean.LeanFx`); elsewhere the tracer takes
fx's own paths, which give the same graph (``tests/test_fx_tracer.py`` compares every node).
"""

from __future__ import annotations

import bisect
import dis
import sys
from collections import OrderedDict
from typing import Any

from shapecalc.torch_bridge.fx_common import ModuleIndex
from shapecalc.torch_bridge.fx_lean import LeanFx, first_paths, lean_node, lean_trace, plain_name
from shapecalc.torch_bridge.measure import torch_module


def tracer_class(known: set[int], recorded: dict[int, Any] | None = None,
                 index: ModuleIndex | None = None, lean: LeanFx | None = None) -> type:
    """A ``torch.fx.Tracer`` subclass for one module: ``known`` are the ids of the modules the
    engine has a layer for (fx records them as one node), ``recorded`` the forwards recorded
    directly (``fx_forwards``), ``index`` the module's :class:`ModuleIndex` (its paths and
    weights, already read), ``lean`` the fx internals to use (default: those found vetted)."""
    torch = torch_module()
    import copy
    import logging

    import torch.fx.traceback as fx_traceback
    from torch.fx import graph as fx_graph
    from torch.fx.graph import immutable_dict
    from torch.fx.node import Node
    from torch.fx.proxy import Attribute, Proxy, TracerBase

    illegal_names = getattr(fx_graph, "_illegal_names", None)  # used only where lean.names

    lean = lean if lean is not None else LeanFx.found()
    fx_log = logging.getLogger("torch.fx.proxy")  # fx logs every node it makes at debug level
    # Argument types that Tracer.create_arg only hands on to TracerBase.create_arg after its
    # searches for parameters, buffers and modules (which they never are): skipping those
    # searches gives the same argument, and most arguments are of these types.
    plain = {Proxy, tuple, list, dict, int, float, bool, str, type(None)}

    class ModuleStack(OrderedDict):
        """fx copies the module stack onto every node it records (``copy.copy``), which for
        an OrderedDict goes through ``__reduce_ex__``; this copy gives the same dict directly.
        The lean path copies it once per change and lets the nodes recorded in between share
        that copy: equal to fx's, and nothing here changes a node's stack once recorded."""

        def __copy__(self) -> "ModuleStack":
            return ModuleStack(self)

    class UnpackingProxy(Proxy):
        """fx's ``Proxy.__iter__`` decides whether ``a, b = proxy`` unpacks by disassembling
        the calling function's whole bytecode at every unpacking (a third of a ViT's trace).
        This one reads the same instruction from a table made once per function.

        fx's ``__torch_function__`` (``F.gelu(x)``, ``torch.cat``) finds the tracer with two
        pytree walks, asks torch.overrides whether the function is a tensor method under a
        fresh warnings filter, and derives the node's name with regular expressions, at every
        call; where the arguments are plain (proxies, numbers, tuples, lists and dicts of
        them, so that pytree would find the same proxies), this one does the same with the
        answers kept per function."""

        def __iter__(self):
            return _unpack(self, sys._getframe(1))

        @classmethod
        def __torch_function__(cls, orig_method, types, args=None, kwargs=None):
            args = args if args else ()
            kwargs = kwargs if kwargs else {}
            tracer = _one_tracer(cls, args, kwargs, leaves, Proxy) if lean.torch_functions else None
            if tracer is None or isinstance(orig_method, special_callables):
                return fx_torch_function(cls, orig_method, types, args, kwargs)
            try:
                method = tensor_methods.get(orig_method)
                if method is None:
                    if len(tensor_methods) >= 4096:  # bounded: a user's own functions too
                        tensor_methods.clear()
                    method = tensor_methods[orig_method] = \
                        torch.overrides.is_tensor_method_or_property(orig_method)
            except TypeError:  # an unhashable callable
                return fx_torch_function(cls, orig_method, types, args, kwargs)
            if method:
                return tracer.create_proxy("call_method", orig_method.__name__, args, kwargs)
            function_name = orig_method.__name__
            name = tracer.target_names.get(function_name)
            if name is None:
                name = tracer.target_names[function_name] = tracer.graph._target_to_str(function_name)
            return tracer.create_proxy("call_function", orig_method, args, kwargs, name=name)

        def __getattr__(self, k: str):
            return UnpackingAttribute(self, k)

    class UnpackingAttribute(Attribute):  # ``B, N, C = x.shape``
        __iter__ = UnpackingProxy.__iter__
        __getattr__ = UnpackingProxy.__getattr__

    plain.add(UnpackingProxy)
    fx_torch_function = Proxy.__torch_function__.__func__
    special_callables = (torch._C.ScriptMethod, torch._ops.HigherOrderOperator)  # fx's own way
    tensor_methods = _TENSOR_METHODS
    # pytree leaves that are never proxies (a torch.Size is a tuple to pytree: not here)
    leaves = frozenset({int, float, bool, str, type(None), torch.dtype, torch.device,
                        torch.layout, torch.memory_format})
    Module, Parameter = torch.nn.Module, torch.nn.Parameter
    scalars = {int, float, bool, str, type(None)}  # TracerBase.create_arg gives them as they are

    class KnownLeafTracer(torch.fx.Tracer):
        """Stops at modules the engine knows, wherever they are defined.

        ``known`` is decided before tracing: while fx traces, every attribute read of a module
        (``module.bias``) goes through fx's patched ``__getattr__``, which scans all of the
        root's parameters, so asking per call made tracing quadratic in depth.
        """

        def __init__(self, wrapped: tuple = ()) -> None:
            super().__init__(autowrap_functions=wrapped)  # functions traced as one call each
            self.module_stack = ModuleStack()
            self.attr_names: dict[int, str] | None = None  # id(parameter/buffer) → first path
            self.returned: dict[str, list[Any]] = {}  # module path → fx nodes of its tuple's items
            self.target_names: dict[Any, str] = {}  # fx target → the name fx derives from it
            self.plain_names: dict[str, str | None] = {}  # str target → its plain_name
            #: the module stack as nodes record it, until a module call changes it (``enter``)
            self.stack_copy: ModuleStack | None = None

        def proxy(self, node):
            return UnpackingProxy(node, self)

        def is_leaf_module(self, m, qualname: str) -> bool:
            return id(m) in known or super().is_leaf_module(m, qualname)

        def call_module(self, m, forward, args, kwargs):
            # A known module is one node: fx's scope and module-stack bookkeeping around it
            # only label nodes recorded inside it, and there are none.
            if id(m) in known:
                return self.create_proxy("call_module", self.path_of_module(m), args, kwargs)
            inputs = _stack_inputs(m, args, kwargs)
            if inputs is not None:
                return self.call_stack(m, inputs)
            record = (recorded or {}).get(id(m))
            if record is not None and len(args) == 1 and not kwargs:  # see fx_forwards
                return self.enter(m, lambda x: record(self, m, x), args, kwargs)
            out = self.enter(m, forward, args, kwargs)
            if isinstance(out, (tuple, list)) and len(out) > 1:
                # Every item a module returns is its result, even one the caller drops (PiT's
                # stage returns its tokens and the class token; the model keeps only the
                # latter): fx would discard the other as dead code, and the block's row with it.
                returned = [leaf.node for leaf in _proxies(out)]
                self.returned.setdefault(self.path_of_module(m), returned)
            return out

        def enter(self, m, forward, args, kwargs):
            """fx's ``call_module`` for a module traced through, with its scope set and reset
            directly: fx's ScopeContextManager copies the scope with ``copy.copy`` (through
            ``__reduce_ex__``, 4 µs a call)."""
            if not lean.scopes:
                return super().call_module(m, forward, args, kwargs)
            path = self.path_of_module(m)
            scope = self.scope
            before = scope.module_path, scope.module_type
            scope.module_path, scope.module_type = path, type(m)
            try:
                num_calls = self.num_calls.get(path, 0)
                key = f"{path}@{num_calls}" if num_calls > 0 else path
                self.module_stack[key] = (path, type(m))
                self.stack_copy = None
                self.num_calls[path] = num_calls + 1
                if not self.is_leaf_module(m, path):
                    out = forward(*args, **kwargs)
                else:
                    out = self.create_proxy("call_module", path, args, kwargs)
                popped, _ = self.module_stack.popitem(last=True)
                self.stack_copy = None
                if popped != key:
                    raise AssertionError(f"Unexpected key {popped}, expected {key}")
            finally:
                scope.module_path, scope.module_type = before
            return out

        def call_stack(self, m, inputs):
            """``nn.TransformerEncoder``/``Decoder`` without masks, layer by layer, as their
            ``forward`` runs it (fx cannot trace that forward: it tests tensors to choose a
            fast path that gives the same values); the table then shows every layer."""
            out, *rest = inputs
            for layer in m.layers:
                out = self.call_module(layer, layer.forward, (out, *rest), {})
            if m.norm is not None:
                out = self.call_module(m.norm, m.norm.forward, (out,), {})
            return out

        # fx finds a parameter's or buffer's name by walking every one of the root's, at each
        # use (reading ``self.weight``, passing it to ``F.batch_norm``): quadratic in depth on
        # timm's norm layers (13 s of ghostnetv3's trace). One walk each gives the same first
        # names fx would find.
        def attr_name(self, a) -> str | None:
            if self.attr_names is None:
                self.attr_names = first_paths(self.root, index)
            return self.attr_names.get(id(a))

        def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None,
                         proxy_factory_fn=None):
            # fx's create_proxy lowers ``args`` and ``kwargs`` through create_arg, which hands a
            # tuple to TracerBase.create_arg, its table of types and a generator calling
            # create_arg again per item; most items are proxies and plain values, lowered here
            # as that path lowers them (4 calls a node fewer). Anything else goes through it.
            if not lean.proxies or type(args) is not tuple or type(kwargs) is not dict:
                return super().create_proxy(kind, target, args, kwargs, name, type_expr,
                                            proxy_factory_fn)
            lower = self.create_arg
            args_ = tuple([a.node if type(a) is UnpackingProxy else a if type(a) in scalars
                           else lower(a) for a in args])
            if kwargs:
                if not all(type(k) is str for k in kwargs):  # fx checks such keys for nodes
                    kwargs_ = lower(kwargs)
                else:
                    kwargs_ = {k: v.node if type(v) is UnpackingProxy else v if type(v) in scalars
                               else lower(v) for k, v in kwargs.items()}
            else:
                kwargs_ = {}
            node = self.create_node(kind, target, args_, kwargs_, name, type_expr)
            return proxy_factory_fn(node) if proxy_factory_fn else self.proxy(node)

        def create_arg(self, a):
            kind = type(a)
            if kind is UnpackingProxy:  # what TracerBase.create_arg gives, without its lookups
                return a.node
            if kind in scalars:
                return a
            if lean.proxies and (kind is tuple or kind is list):  # as TracerBase.create_arg does
                lowered = [self.create_arg(item) for item in a]
                return tuple(lowered) if kind is tuple else lowered
            if kind in plain:
                return TracerBase.create_arg(self, a)
            if isinstance(a, torch.Tensor):
                path = self.attr_name(a)
                if path is not None:
                    return self.create_node("get_attr", path, (), {})
            return super().create_arg(a)

        def getattr(self, attr, attr_val, parameter_proxy_cache):
            # Parameter's isinstance runs its metaclass's Python check: a submodule (most
            # reads) is told apart first
            if type(attr_val) is not Parameter and (isinstance(attr_val, Module)
                                                    or not isinstance(attr_val, Parameter)):
                # a submodule, buffer, number …
                if not self.proxy_buffer_attributes:
                    return attr_val  # what fx's getattr gives for it, less its closure
                return super().getattr(attr, attr_val, parameter_proxy_cache)
            if self.param_shapes_constant or self.proxy_buffer_attributes:
                return super().getattr(attr, attr_val, parameter_proxy_cache)
            path = self.attr_name(attr_val)
            if path is None:
                return attr_val
            if path not in parameter_proxy_cache:
                parameter_proxy_cache[path] = self.create_proxy("get_attr", path, (), {})
            return parameter_proxy_cache[path]

        def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
            if not lean.nodes or self.check_mutable_operations or self.record_stack_traces \
                    or self.graph.owning_module is not None \
                    or fx_traceback.has_preserved_node_meta() or fx_log.isEnabledFor(logging.DEBUG):
                return super().create_node(kind, target, args, kwargs, name, type_expr)
            legal = None
            if name is None and lean.names and type(target) is str:
                # None where fx's own derivation is needed; a target (a method, a module path
                # called again) is named once per trace
                legal = self.plain_names.get(target, self)
                if legal is self:
                    legal = self.plain_names[target] = plain_name(target)
            node = lean_node(self.graph, self.target_names, kind, target, args, kwargs, name,
                              type_expr, Node, immutable_dict, legal, illegal_names)
            scope = self.scope
            self.node_name_to_scope[node.name] = (scope.module_path, scope.module_type)
            stack = self.module_stack
            if stack:
                if not lean.scopes or type(stack) is not ModuleStack:
                    node.meta["nn_module_stack"] = copy.copy(stack)
                else:  # every node recorded in the same module call shares one copy
                    if self.stack_copy is None:
                        self.stack_copy = ModuleStack(stack)
                    node.meta["nn_module_stack"] = self.stack_copy
            return node

        def trace(self, root, concrete_args=None):
            if lean.trace is None or concrete_args is not None or index is None \
                    or index.root is not root or isinstance(root, torch.fx.GraphModule):
                return super().trace(root, concrete_args)
            return lean_trace(self, lean, root, index)

    return KnownLeafTracer


# ------------------------------------------------------------------ helpers
def _proxies(value: Any) -> list[Any]:
    """The proxies in a module's result (nested tuples, lists and dicts), in order."""
    from torch.fx.proxy import Proxy

    if isinstance(value, Proxy):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else ()
    return [p for v in items for p in _proxies(v)]


def _unpack(proxy: Any, frame: Any) -> Any:
    """What fx's ``Proxy.__iter__`` gives for the instruction ``frame`` is at: the items when
    it unpacks a fixed count (``UNPACK_SEQUENCE``), else the tracer's ``iter``."""
    code = frame.f_code
    table = _INSTRUCTIONS.get(code)
    if table is None:
        if len(_INSTRUCTIONS) >= 1024:  # bounded: a process may trace many models' forwards
            _INSTRUCTIONS.clear()
        found = list(dis.get_instructions(code))
        table = _INSTRUCTIONS[code] = ([i.offset for i in found], found)
    offsets, found = table
    inst = found[bisect.bisect_left(offsets, frame.f_lasti)]
    if inst.opname == "UNPACK_SEQUENCE":
        return (proxy[i] for i in range(inst.argval))
    return proxy.tracer.iter(proxy)


#: code object → its instructions' offsets and the instructions (for :func:`_unpack`): a code
#: object never changes, so its table is made once per process, not once per trace (the same
#: forwards are disassembled at every trace of a model: a tenth of a ViT's trace).
_INSTRUCTIONS: dict[Any, tuple[list[int], list[Any]]] = {}


def _one_tracer(cls: type, args: tuple, kwargs: dict, leaves: frozenset, proxy_type: type) -> Any:
    """The tracer of the ``cls`` proxies in ``args`` and ``kwargs``, as fx's
    ``__torch_function__`` finds it, where they hold only proxies (``proxy_type``: fx's
    ``Proxy``), values of ``leaves``, and tuples, lists and dicts of them (exactly, not
    subclasses: pytree may take those apart otherwise); else ``None``, as when there is no
    tracer or more than one (fx then says so)."""
    tracers: dict[Any, None] = {}
    stack = [*args, *kwargs.values()]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is tuple or kind is list:
            stack.extend(value)
        elif kind is dict:
            stack.extend(value.values())
        elif isinstance(value, proxy_type):
            if isinstance(value, cls):
                tracers[value.tracer] = None
        elif kind not in leaves:
            return None
    return next(iter(tracers)) if len(tracers) == 1 else None


#: function → whether torch.overrides calls it a tensor method or property (a fixed answer
#: for a given function), for :class:`UnpackingProxy`'s ``__torch_function__``; bounded.
_TENSOR_METHODS: dict[Any, bool] = {}


def _stack_inputs(m: Any, args: tuple, kwargs: dict) -> tuple | None:
    """The tensors a torch transformer stack passes to each layer when called without masks
    (``src``; ``tgt, memory``), or ``None`` for anything else (masks, subclasses)."""
    nn = torch_module().nn
    width = {nn.TransformerEncoder: 1, nn.TransformerDecoder: 2}.get(type(m))
    if width is None or len(args) != width or any(
            v is not None and v is not False for v in kwargs.values()):
        return None
    return tuple(args)


__all__ = ["tracer_class"]
