"""The ``torch.fx`` tracer that reads a user's module: it stops at modules the engine knows, and
records the same graph as ``torch.fx.Tracer`` at a lower cost per trace and per node.

torch.fx's trace had fixed costs that grew with the model and per-node costs that dwarfed the
engine's own (about 50 µs a node on timm CNNs, as much as torchinfo's real forward):

- it replaces ``nn.Module.__call__`` and ``__getattr__`` for the trace and puts them back:
  slots, so each change updates every one of a thousand subclasses (timm and transformers
  loaded), 2-4 ms a trace. Here calls are caught at ``nn.Module._call_impl`` (an ordinary
  attribute) and parameter reads on the classes in the module tree;
- at the start of every trace it walks every module twice, once for the module paths and once
  for tensors held as plain attributes, which almost no model has (5 ms on DenseNet-121);
- every node's arguments are walked with pytree to warn about symbolic ints, which a trace
  with proxies never makes; its name goes through three regular expressions; its module stack
  and each module's scope are copied through ``copy.copy``.

:class:`LeanFx` holds the private pieces of ``torch.fx`` that the cheaper paths need. They are
used only when the fx functions they stand in for are the ones vetted here (the attribute
names those functions use, hashed: see :func:`fx_fingerprint`); on any other torch, or when a
piece is missing, the tracer takes fx's own paths, which give the same graph
(``tests/test_fx_tracer.py`` traces models both ways and compares every node).
"""

from __future__ import annotations

import bisect
import dis
import functools
import hashlib
import itertools
import sys
import types
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from shapecalc.torch_bridge.fx_common import ModuleIndex
from shapecalc.torch_bridge.measure import torch_module

#: fx functions whose work the lean paths redo → the fingerprint of the version vetted here.
VETTED = {
    "Tracer.trace": "e485aebe9f68e63b",
    "Graph.create_node": "a8e7322561f1ac38",
    "TracerBase.create_node": "c3470184694edde8",
    "TracerBase.create_proxy": "8588878995f29ed4",
    "TracerBase.create_arg": "86eb8949d367fcae",
    "Proxy.__torch_function__": "db508af6ec731b56",
    "_patch_wrapped_functions": "033712f37a3a3a51",
    "_autowrap_check": "9f7ef3f9ce7bc65f",
    "_create_wrapped_func": "038c62cfb6f61a06",
    "is_tensor_method_or_property": "4ba6c33179a3971f",  # torch.overrides' (unwrapped)
    "_wrapped_call_impl": "c0398f1be4156c9d",  # nn.Module's
    "Graph._target_to_str": "62a1d383b7d0b831",
    "_Namespace.create_name": "dd5cff7833b96204",
    "_snake_case": "456a3689ab6b29f1",
    "Tracer.call_module": "40f82553f214eeda",
    "ScopeContextManager.__init__": "c8e5fa8abc42d05e",
    "ScopeContextManager.__exit__": "9e740ad65b478394",
}
#: The patterns fx names nodes with (torch/fx/graph.py), as vetted.
_NAME_PATTERNS = {"_name_regex": r"^([a-zA-Z_][0-9a-zA-Z_]*?)(?:_(\d+))?$",
                  "_illegal_char_regex": "[^0-9a-zA-Z_]+"}
_SNAKE_PATTERN = r"(?<=[a-z])([A-Z])"


def fx_fingerprint(function: Callable[..., Any]) -> str:
    """A short hash of the global and attribute names a function's code (and the functions
    defined in it) uses: a torch release that changes what the function does changes them."""
    def names(code: types.CodeType) -> set[str]:
        found = set(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                found |= names(const)
        return found

    return hashlib.sha256(" ".join(sorted(names(function.__code__))).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LeanFx:
    """The private parts of ``torch.fx`` the lean paths use; ``None`` where not vetted."""

    trace: Any  # torch.fx._symbolic_trace (the module), for its own trace's pieces
    nodes: bool  # Graph.create_node and TracerBase.create_node are the vetted ones
    #: fx derives names from targets (``_target_to_str``) and makes them legal and unique
    #: (``_Namespace.create_name``) as vetted: see :func:`plain_name` and :func:`_fresh_name`
    names: bool = False
    #: Tracer.call_module and the scope it keeps are the vetted ones (see KnownLeafTracer.enter)
    scopes: bool = False
    #: TracerBase.create_proxy and create_arg are the vetted ones (see KnownLeafTracer.create_proxy)
    proxies: bool = False
    #: Proxy.__torch_function__ and what it asks of torch.overrides are the vetted ones (see
    #: UnpackingProxy.__torch_function__)
    torch_functions: bool = False
    #: the functions that wrap fx's leaf functions for a trace are the vetted ones (see
    #: :func:`_patch_wrapped` and :func:`_autowrap`)
    wrappers: bool = False
    #: ``nn.Module._call_impl`` as torch defines it, where ``__call__`` is the vetted
    #: ``_wrapped_call_impl`` that hands every call to it; else ``None``
    call_impl: Any = None

    @staticmethod
    @functools.cache
    def found() -> "LeanFx":
        from torch.fx import _symbolic_trace, graph, proxy

        def vetted(owner: Any, qualname: str, name: str | None = None) -> bool:
            """``owner.<qualname>`` exists and is the function vetted under that name (or
            under ``name``)."""
            function = functools.reduce(lambda o, k: getattr(o, k, None), qualname.split("."), owner)
            return getattr(function, "__code__", None) is not None \
                and fx_fingerprint(function) == VETTED[name or qualname]

        def pattern(name: str) -> str | None:
            return getattr(getattr(graph, name, None), "pattern", None)

        trace_parts = ("_is_fx_tracing_flag", "_orig_module_getattr", "_orig_module_call",
                       "_new_patcher", "_patch_wrapped_functions", "_autowrap_check",
                       "_constant_attribute_types", "Graph")
        own_trace = vetted(_symbolic_trace, "Tracer.trace") and all(
            hasattr(_symbolic_trace, part) for part in trace_parts)
        nodes = vetted(graph, "Graph.create_node") and vetted(proxy, "TracerBase.create_node") \
            and all(hasattr(graph, part) for part in ("immutable_dict", "Node"))
        snake = getattr(getattr(graph, "_snake_case_sub", None), "func", None)
        names = nodes and vetted(graph, "Graph._target_to_str") \
            and vetted(graph, "_Namespace.create_name") and vetted(graph, "_snake_case") \
            and getattr(getattr(snake, "__self__", None), "pattern", None) == _SNAKE_PATTERN \
            and all(pattern(k) == v for k, v in _NAME_PATTERNS.items()) \
            and isinstance(getattr(graph, "_illegal_names", None), dict)
        scopes = vetted(_symbolic_trace, "Tracer.call_module") \
            and vetted(proxy, "ScopeContextManager.__init__") \
            and vetted(proxy, "ScopeContextManager.__exit__")
        proxies = vetted(proxy, "TracerBase.create_proxy") and vetted(proxy, "TracerBase.create_arg")
        wrappers = all(vetted(_symbolic_trace, name) for name in (
            "_patch_wrapped_functions", "_autowrap_check", "_create_wrapped_func"))
        torch_functions = names and vetted(proxy, "Proxy.__torch_function__") \
            and vetted(torch_module().overrides, "is_tensor_method_or_property.__wrapped__",
                       "is_tensor_method_or_property")
        Module = torch_module().nn.Module
        wrapped = Module.__dict__.get("_wrapped_call_impl")
        calls = wrapped is not None and Module.__call__ is wrapped \
            and vetted(Module, "_wrapped_call_impl") and callable(Module.__dict__.get("_call_impl"))
        return LeanFx(_symbolic_trace if own_trace else None, nodes, names, scopes, proxies,
                      torch_functions, wrappers,
                      Module.__dict__.get("_call_impl") if calls else None)


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
                self.attr_names = _first_paths(self.root, index)
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
            node = _lean_node(self.graph, self.target_names, kind, target, args, kwargs, name,
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
            return _lean_trace(self, lean, root, index)

    return KnownLeafTracer


# ------------------------------------------------------------------ fx's work, done leaner
def plain_name(target: str) -> str | None:
    """The name fx gives a node whose target is a module, attribute or method path such as
    ``blocks.0.conv_pw``, already legal (``blocks_0_conv_pw``), so that fx's ``create_name``
    takes it as it is; ``None`` for anything but lowercase ASCII with single dots (fx then
    derives it). fx snake-cases the target, strips a dunder's underscores, and replaces each
    run of characters not allowed in a Python name with ``_``, with regular expressions that
    cost 2-3 µs a node; most of a CNN's nodes are module calls and weight reads, each path
    met once."""
    if not target or not target.isascii() or target.lower() != target or ".." in target:
        return None
    if target.startswith("__") and target.endswith("__"):
        target = target[2:-2]
    name = target.replace(".", "_")
    if not name or not name.replace("_", "").isalnum() and name.replace("_", ""):
        return None
    return "_" + name if name[0].isdigit() else name


def _lean_node(graph: Any, target_names: dict[Any, str], kind: str, target: Any, args: tuple,
               kwargs: dict, name: str | None, type_expr: Any, node_type: Any,
               empty_kwargs: Any, legal: str | None = None, illegal: dict | None = None) -> Any:
    """``Graph.create_node`` as the vetted torch does it, less the pytree walk over the
    arguments that only warns about symbolic ints (a proxy trace makes none), and with each
    target's name (``target_names``) derived once per trace rather than once per node.
    ``node_type`` and ``empty_kwargs`` are fx's ``Node`` and ``immutable_dict``, imported once
    per tracer class (an import statement here cost a microsecond a node). ``legal``: the
    name :func:`plain_name` gave (made unique by :func:`_fresh_name`; ``illegal`` is fx's
    table of names a node may not take)."""
    if legal is not None:
        name = legal
    elif name is None:
        try:
            name = target_names.get(target)
        except TypeError:  # an unhashable target: derive its name every time
            name = graph._target_to_str(target)
        else:
            if name is None:
                name = target_names[target] = graph._target_to_str(target)
    if args and not isinstance(args, tuple):
        raise AssertionError(f"args must be a tuple, got {type(args)}")
    if kwargs and not isinstance(kwargs, dict):
        raise AssertionError(f"kwargs must be a dict, got {type(kwargs)}")
    namespace = graph._graph_namespace
    name = _fresh_name(namespace, legal, illegal) if legal is not None \
        else namespace.create_name(name, None)
    node = node_type(graph, name, kind, target, args or (), kwargs or empty_kwargs(), type_expr)
    namespace.associate_name_with_obj(name, node)
    graph._insert(node)
    graph._find_nodes_lookup_table.insert(node)
    graph._len += 1
    return node


def _fresh_name(namespace: Any, candidate: str, illegal: dict) -> str:
    """``namespace.create_name(candidate, None)`` as the vetted fx does it, for a candidate
    that is already a legal name (:func:`plain_name`'s): fx's regular expression splits it
    into a base and the number after its last ``_``, which ``rpartition`` does alike (the
    base starts with a letter or ``_``, and the number is ASCII digits)."""
    head, sep, tail = candidate.rpartition("_")
    base, num = (head, tail) if sep and head and tail.isdigit() else (candidate, None)
    used = namespace._used_names
    if num is None or candidate in used:
        num = namespace._base_count.get(base, 0)
        if illegal.get(candidate) is not None:  # a keyword or builtin: fx numbers it
            num += 1
            candidate = f"{base}_{num}"
    else:
        num = int(num)
    while candidate in used:
        num += 1
        candidate = f"{base}_{num}"
    used.add(candidate)
    namespace._base_count[base] = num
    return candidate


def _lean_trace(tracer: Any, lean: LeanFx, root: Any, index: ModuleIndex) -> Any:
    """``Tracer.trace(root)`` as the vetted torch does it, with the module paths taken from
    ``index`` (read once per import) and the search for tensors held as plain module
    attributes skipped when no module holds one (the same empty map fx would build)."""
    import inspect

    torch = torch_module()
    fx = lean.trace
    was_tracing = fx._is_fx_tracing_flag
    fx._is_fx_tracing_flag = True
    try:
        tracer.root = root
        if not hasattr(type(root), tracer.traced_func_name):
            raise AssertionError(f"traced_func_name={tracer.traced_func_name} doesn't exist in "
                                 f"{type(root).__name__}")
        fn = getattr(type(root), tracer.traced_func_name)
        tracer.root_module_name = root._get_name()
        tracer.submodule_paths = index.first_paths
        tracer.graph = fx.Graph(tracer_cls=type(tracer))
        if hasattr(fn, "__code__"):
            code = fn.__code__
            tracer.graph._co_fields = {"co_name": code.co_name, "co_filename": code.co_filename,
                                       "co_firstlineno": code.co_firstlineno}
        tracer.tensor_attrs = _tensor_attrs(root, index, fx._constant_attribute_types)
        if not isinstance(fn, types.FunctionType):
            raise AssertionError(f"Expected FunctionType, got {type(fn)}")
        fn_globals = fn.__globals__
        fn, args = tracer.create_args_for_root(fn, True, None)
        parameter_proxy_cache: dict[str, Any] = {}

        @functools.wraps(fx._orig_module_getattr)
        def module_getattr_wrapper(mod: Any, attr: str) -> Any:
            attr_val = fx._orig_module_getattr(mod, attr)
            return tracer.getattr(attr, attr_val, parameter_proxy_cache)

        # fx intercepts module calls by replacing ``nn.Module.__call__``, a slot: setting it on
        # a class with a thousand subclasses (timm and transformers loaded) updates each one,
        # 0.5 ms each way. ``__call__`` hands every call to ``_call_impl``, an ordinary
        # attribute, which costs nothing to replace; so that is replaced where it sees the
        # same calls (see _calls_through_call_impl).
        through_impl = lean.call_impl is not None and _calls_through_call_impl(index, lean.call_impl)
        autowrap_check = functools.partial(_autowrap, fx) if lean.wrappers else fx._autowrap_check
        run_module = lean.call_impl if through_impl else fx._orig_module_call

        @functools.wraps(run_module)
        def module_call_wrapper(mod: Any, *args: Any, **kwargs: Any) -> Any:
            def forward(*args: Any, **kwargs: Any) -> Any:
                return run_module(mod, *args, **kwargs)

            autowrap_check(patcher, getattr(getattr(mod, "forward", mod), "__globals__", {}),
                           tracer._autowrap_function_ids)
            return tracer.call_module(mod, forward, args, kwargs)

        # fx also replaces nn.Module.__getattr__ (a slot: 1 ms each way) to see parameters
        # read in a forward. A parameter is read through the module holding it, and every
        # module holding one of the root's is in the tree; a parameter that is not the root's
        # gives itself either way (KnownLeafTracer.getattr). So patching each class in the
        # tree sees the same reads, for a tenth of the cost (_getattr_classes says where).
        patched: list[type] = []
        try:
            with fx._new_patcher() as patcher:
                try:
                    for cls in _getattr_classes(index) or ():
                        setattr(cls, "__getattr__", module_getattr_wrapper)
                        patched.append(cls)
                except (TypeError, AttributeError):  # a class that refuses: fx's way for all
                    for cls in reversed(patched):
                        delattr(cls, "__getattr__")
                    patched.clear()
                if not patched:
                    patcher.patch_method(torch.nn.Module, "__getattr__", module_getattr_wrapper,
                                         deduplicate=False)
                patcher.patch_method(torch.nn.Module, "_call_impl" if through_impl else "__call__",
                                     module_call_wrapper, deduplicate=False)
                if lean.wrappers:
                    _patch_wrapped(fx, patcher)
                else:
                    fx._patch_wrapped_functions(patcher)
                autowrap_check(patcher, fn_globals, tracer._autowrap_function_ids)
                for module in tracer._autowrap_search:
                    autowrap_check(patcher, module.__dict__, tracer._autowrap_function_ids)
                annotations = inspect.get_annotations(inspect.unwrap(fn))
                tracer.create_node("output", "output", (tracer.create_arg(fn(*args)),), {},
                                   type_expr=annotations.get("return", None))
        finally:
            for cls in reversed(patched):
                delattr(cls, "__getattr__")
        tracer.submodule_paths = None
    except RuntimeError as err:
        if err.args and isinstance(err.args[0], str) and "data-dependent" in err.args[0]:
            err.partial_fx_graph = tracer.graph.python_code(root_module="self", verbose=True).src
        raise
    finally:
        fx._is_fx_tracing_flag = was_tracing
    return tracer.graph


def _wrapped_func(fx: Any, function: Any) -> Any:
    """``fx._create_wrapped_func(function)``: the wrapper that records a call of a leaf
    function (``math.sqrt``, a function registered with ``torch.fx.wrap``) as one node. It
    depends on the function alone, so it is made once per process rather than at every trace
    (fx makes some ninety per trace of a timm model)."""
    try:
        found = _WRAPPERS.get(function)
    except TypeError:  # an unhashable callable
        return fx._create_wrapped_func(function)
    if found is None:
        if len(_WRAPPERS) >= 4096:  # bounded
            _WRAPPERS.clear()
        found = _WRAPPERS[function] = fx._create_wrapped_func(function)
    return found


_WRAPPERS: dict[Any, Any] = {}


def _patch_wrapped(fx: Any, patcher: Any) -> None:
    """``fx._patch_wrapped_functions(patcher)`` as the vetted fx does it, with each wrapper
    from :func:`_wrapped_func`."""
    import builtins

    for (_, name), frame_dict in fx._wrapped_fns_to_patch.copy().items():
        if name not in frame_dict and hasattr(builtins, name):
            orig_fn = getattr(builtins, name)
        else:
            orig_fn = frame_dict[name]
        patcher.patch(frame_dict, name, _wrapped_func(fx, orig_fn))
    for cls, name in fx._wrapped_methods_to_patch:
        patcher.patch_method(cls, name, fx._create_wrapped_method(cls, name))


def _autowrap(fx: Any, patcher: Any, frame_dict: dict[str, Any], function_ids: set[int]) -> None:
    """``fx._autowrap_check`` as the vetted fx does it, with each wrapper from
    :func:`_wrapped_func`."""
    if patcher.visit_once(frame_dict):
        for name, value in frame_dict.items():
            if not name.startswith("_") and callable(value) and id(value) in function_ids:
                patcher.patch(frame_dict, name, _wrapped_func(fx, value))


def _calls_through_call_impl(index: ModuleIndex, impl: Any) -> bool:
    """Whether replacing ``nn.Module._call_impl`` intercepts every call of the modules in
    ``index`` that replacing ``__call__`` would (given ``LeanFx.call_impl``: ``__call__`` is the
    vetted ``_wrapped_call_impl``, which hands each call to ``self._call_impl`` unless the
    module was compiled with ``module.compile()``): none was, and none overrides either. (A
    module outside the tree, made in the forward, is intercepted either way unless compiled.)"""
    wrapped = torch_module().nn.Module._wrapped_call_impl
    return all(m._compiled_call_impl is None and type(m)._call_impl is impl
               and type(m)._wrapped_call_impl is wrapped and "_call_impl" not in m.__dict__
               for m in index.unique)


def _getattr_classes(index: ModuleIndex) -> list[type] | None:
    """The classes of the modules in ``index``, where setting ``__getattr__`` on each sees what
    setting it on ``nn.Module`` would; ``None`` where a class has its own ``__getattr__`` (it
    may hand reads on to ``nn.Module``'s, which only the module-wide patch sees)."""
    Module = torch_module().nn.Module
    classes = list(dict.fromkeys(type(m) for m in index.unique))
    for cls in classes:
        owner = next((base for base in cls.__mro__ if "__getattr__" in base.__dict__), None)
        if owner is not Module or cls is Module:  # a plain nn.Module() holds Module's own
            return None
    return classes


def _tensor_attrs(root: Any, index: ModuleIndex, kinds: tuple) -> dict[Any, str]:
    """fx's map of the tensors (and script objects) modules hold as plain attributes to their
    paths. Almost no model has one, so the modules' attributes are first looked over by type
    alone; only when one is found does fx's own walk run, giving its exact map."""
    nn = torch_module().nn
    classes = {type(m) for m in index.unique}
    if all(c.named_children is nn.Module.named_children and c.named_modules is nn.Module.named_modules
           for c in classes):
        held = set(map(type, itertools.chain.from_iterable(m.__dict__.values() for m in index.unique)))
        if not any(issubclass(t, kinds) for t in held):
            return {}
    found: dict[Any, str] = {}

    def collect(m: Any, prefix: list[str]) -> None:  # fx's collect_tensor_attrs
        for k, v in m.__dict__.items():
            if isinstance(v, kinds):
                found[v] = ".".join(prefix + [k])
        for k, child in m.named_children():
            collect(child, prefix + [k])

    collect(root, [])
    return found


def _first_paths(root: Any, index: ModuleIndex | None) -> dict[int, str]:
    """id(parameter or buffer) → the first path ``root.named_parameters()`` then
    ``named_buffers()`` give it (``index`` has them all already, in the same order)."""
    found: dict[int, str] = {}
    if index is not None and index.root is root:
        for path, t in index.params:
            found.setdefault(id(t), path)
        for path, t in index.buffers:
            found.setdefault(id(t), path)
        return found
    for path, t in list(root.named_parameters()) + list(root.named_buffers()):
        found.setdefault(id(t), path)
    return found


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


__all__ = ["LeanFx", "VETTED", "fx_fingerprint", "plain_name", "tracer_class"]
