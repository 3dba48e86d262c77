"""torch.fx's work for a trace, done leaner where the installed torch.fx is the one vetted here.

torch.fx's trace had fixed costs that grew with the model and per-node costs that dwarfed the
engine's own (about 50 µs a node on timm CNNs, as much as torchinfo's real forward):

- it replaces ``nn.Module.__call__`` and ``__getattr__`` for the trace and puts them back:
  slots, so each change updates every one of a thousand subclasses (timm and transformers
  loaded), 2-4 ms a trace. Here calls are caught at ``nn.Module._call_impl`` (an ordinary
  attribute) and parameter reads on the classes in the module tree;
- at the start of every trace it walks every module twice, once for the module paths and once
  for tensors held as plain attributes, which almost no model has (5 ms on DenseNet-121), and
  makes a new wrapper for each leaf function it patches (some ninety on a timm model);
- every node's arguments are walked with pytree to warn about symbolic ints, which a trace
  with proxies never makes; its name goes through three regular expressions; its module stack
  and each module's scope are copied through ``copy.copy``.

:class:`LeanFx` holds the private pieces of ``torch.fx`` that the cheaper paths need. They are
used only when the fx functions they stand in for are the ones vetted here (the attribute
names those functions use, hashed: see :func:`fx_fingerprint`); on any other torch, or when a
piece is missing, the tracer (``fx_tracer``) takes fx's own paths, which give the same graph
(``tests/test_fx_tracer.py`` traces models both ways and compares every node).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import types
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
    #: Tracer.call_module and the scope it keeps are the vetted ones (see fx_tracer's
    #: KnownLeafTracer.enter)
    scopes: bool = False
    #: TracerBase.create_proxy and create_arg are the vetted ones (see fx_tracer's
    #: KnownLeafTracer.create_proxy)
    proxies: bool = False
    #: Proxy.__torch_function__ and what it asks of torch.overrides are the vetted ones (see
    #: fx_tracer's UnpackingProxy.__torch_function__)
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


def lean_node(graph: Any, target_names: dict[Any, str], kind: str, target: Any, args: tuple,
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


def lean_trace(tracer: Any, lean: LeanFx, root: Any, index: ModuleIndex) -> Any:
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


def first_paths(root: Any, index: ModuleIndex | None) -> dict[int, str]:
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


__all__ = ["LeanFx", "VETTED", "first_paths", "fx_fingerprint", "lean_node", "lean_trace",
           "plain_name"]
