"""What both ways of reading an ``nn.Module`` (``fx_import``'s chain/hooks and ``fx_convert``'s fx
pass) share: a torch module's layer spec and its containers as blocks.

It sits below both fx modules so that neither imports the other's private helpers.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from shapecalc.core.graph import BlockInfo, EnclosingPaths
from shapecalc.core.layers import (
    LAYER_TYPES, MERGE_TYPES, AvgPool2d, CondConv2d, Conv2d, Layer, Linear, MaxPool2d,
)
from shapecalc.core.layers.base import TF_SAME
from shapecalc.torch_bridge.fx_ops import MODULE_ARGUMENTS
from shapecalc.torch_bridge.measure import torch_module


@dataclass(frozen=True)
class ModuleIndex:
    """Every module, parameter and buffer of a root under every path it has, from one walk.

    Importing a model asks the same questions of its module tree several times (are modules
    or weights shared? which module is at this path? which parameters are there? in which
    modules does fx look for tensors?); on a deep model each walk costs milliseconds, so they
    share one reading. Every list below is in the order torch's own ``named_*`` walks give.
    """

    root: Any
    modules: dict[str, Any]  # path → module; a shared module appears under each of its paths
    params: list[tuple[str, Any]]  # (path, parameter) for every path, shared ones repeated
    buffers: list[tuple[str, Any]]  # (path, buffer) likewise
    unique: list[Any]  # every module once, in ``root.modules()`` order
    first_paths: dict[Any, str]  # module → its first path (``root.named_modules()``)

    @classmethod
    def of(cls, root: Any) -> "ModuleIndex":
        nn = torch_module().nn
        pairs = _named_modules(root, nn.Module.named_modules)
        if type(root).named_parameters is nn.Module.named_parameters \
                and type(root).named_buffers is nn.Module.named_buffers:
            # what ``named_parameters(remove_duplicate=False)`` yields, from the same walk
            params = [(f"{path}.{k}" if path else k, p) for path, m in pairs
                      for k, p in m._parameters.items() if p is not None]
            buffers = [(f"{path}.{k}" if path else k, b) for path, m in pairs
                       for k, b in m._buffers.items() if b is not None]
        else:
            params = list(root.named_parameters(remove_duplicate=False))
            buffers = list(root.named_buffers(remove_duplicate=False))
        seen: set[Any] = set()
        first: list[tuple[str, Any]] = []
        for path, m in pairs:
            if m not in seen:  # as named_modules() skips a module met before
                seen.add(m)
                first.append((path, m))
        return cls(root, dict(pairs), params, buffers, [m for _, m in first],
                   {m: path for path, m in first})

    @property
    def shares_nothing(self) -> bool:
        """No module and no parameter is reachable by two paths (tied weights, reused blocks)."""
        return (len({id(m) for m in self.modules.values()}) == len(self.modules)
                and len({id(p) for _, p in self.params}) == len(self.params))


def _named_modules(root: Any, walk: Any) -> list[tuple[str, Any]]:
    """``root.named_modules(remove_duplicate=False)`` as a list, walked with a stack: torch's
    nested generators hand each module up through every level above it. ``walk`` is
    ``nn.Module.named_modules``; a module whose class walks otherwise, or a tree deeper than
    Python's recursion limit (a module holding itself), is walked by torch."""
    limit = sys.getrecursionlimit()
    found: list[tuple[str, Any]] = []
    stack = [("", root, 0)]
    while stack:
        prefix, m, depth = stack.pop()
        if type(m).named_modules is not walk or depth > limit:
            return list(root.named_modules(remove_duplicate=False))
        found.append((prefix, m))
        below = depth + 1
        stack.extend(reversed([(f"{prefix}.{name}" if prefix else name, child, below)
                               for name, child in m._modules.items() if child is not None]))
    return found


def module_to_layer(module: Any, made: dict | None = None) -> Layer | None:
    """The layer spec equal to a ``torch.nn`` module, read from its attributes (``None`` if unknown).

    Lazy modules that have not run yet keep their inferred fields ``None``, exactly like the
    spec-file convention, so the engine infers them from the input. ``made`` (layer type and
    arguments → layer) lets a model's many identical modules share one checked layer value.
    """
    cls = type(module)
    name = cls.__name__
    if not cls.__module__.startswith("torch.nn"):
        name = cls.__dict__.get("shapecalc_type")  # a spec build's single-output twin (LSTM …)
        if name is None:
            return _timm_layer(module, made)
    lazy = name.startswith("Lazy")
    base = name[4:] if lazy else name
    spec_cls = LAYER_TYPES.get(base)
    if spec_cls is None or base in MERGE_TYPES or spec_cls.__module__.endswith("functional"):
        return None
    reader = MODULE_ARGUMENTS.get(base)
    if reader is not None:  # attributes that are not the constructor's arguments
        try:
            return _build(spec_cls, reader(module), made)
        except Exception:  # an unknown activation, an argument the spec rejects: measure it
            return None
    uninitialized = lazy and module.has_uninitialized_params()
    kwargs: dict[str, Any] = {}
    missing = object()
    for name, inferred, bias_flag, required in _field_plan(spec_cls):
        if inferred and uninitialized:
            kwargs[name] = None
            continue
        if bias_flag:
            kwargs["bias"] = getattr(module, "bias", None) is not None
            continue
        value = getattr(module, name, missing)
        if value is missing:
            if required:
                return None
            continue
        if type(value).__name__ in ("Size", "list"):
            value = tuple(value)
        kwargs[name] = value
    try:
        return _build(spec_cls, kwargs, made)
    except Exception:  # an argument combination the spec rejects: measure it instead
        return None


def _conv2d_same(m: Any) -> tuple[type, dict[str, Any]] | None:
    # conv2d_same(x, weight, bias, stride, padding, dilation, groups) ignores padding and
    # padding_mode and takes the kernel from the weight.
    return Conv2d, dict(in_channels=m.in_channels, out_channels=m.out_channels,
                        kernel_size=tuple(m.weight.shape[-2:]), stride=tuple(m.stride),
                        padding=TF_SAME, dilation=tuple(m.dilation), groups=m.groups,
                        bias=m.bias is not None)


def _std_conv2d_same(m: Any) -> tuple[type, dict[str, Any]] | None:
    # Weight standardisation rescales the weight (F.batch_norm on it, which FlopCounterMode
    # does not count): no shape, parameter or MAC changes. ``same_pad`` pads first, then
    # F.conv2d with ``padding`` (0 when same_pad, as the constructor sets it).
    padding = tuple(m.padding) if isinstance(m.padding, (tuple, list)) else m.padding
    if m.same_pad:
        if padding not in ((0, 0), "valid"):
            return None  # both paddings at once: no layer says that
        padding = TF_SAME
    return Conv2d, dict(in_channels=m.in_channels, out_channels=m.out_channels,
                        kernel_size=tuple(m.kernel_size), stride=tuple(m.stride), padding=padding,
                        dilation=tuple(m.dilation), groups=m.groups, bias=m.bias is not None)


def _cond_conv2d(m: Any) -> tuple[type, dict[str, Any]] | None:
    # Dynamic padding runs conv2d_same (TF 'SAME'), else F.conv2d with the static padding.
    padding = TF_SAME if m.dynamic_padding else tuple(m.padding)
    return CondConv2d, dict(in_channels=m.in_channels, out_channels=m.out_channels,
                            kernel_size=tuple(m.kernel_size), stride=tuple(m.stride), padding=padding,
                            dilation=tuple(m.dilation), groups=m.groups, bias=m.bias is not None,
                            num_experts=m.num_experts)


def _max_pool2d_same(m: Any) -> tuple[type, dict[str, Any]] | None:
    # max_pool2d_same pads with -inf, then F.max_pool2d(padding 0) without indices.
    return MaxPool2d, dict(kernel_size=m.kernel_size, stride=m.stride, padding=TF_SAME,
                           dilation=m.dilation, ceil_mode=m.ceil_mode)


def _avg_pool2d_same(m: Any) -> tuple[type, dict[str, Any]] | None:
    # pad_same (no dilation), then F.avg_pool2d with the module's own padding (0 as built).
    padding = tuple(m.padding) if isinstance(m.padding, (tuple, list)) else m.padding
    if padding not in (0, (0, 0)):
        return None
    return AvgPool2d, dict(kernel_size=m.kernel_size, stride=m.stride, padding=TF_SAME,
                           ceil_mode=m.ceil_mode, count_include_pad=m.count_include_pad)


def _transformers_conv1d(m: Any) -> tuple[type, dict[str, Any]] | None:
    # GPT-2's linear layer: addmm(bias, x.view(-1, nx), weight) with the weight stored (nx, nf).
    return Linear, dict(in_features=m.nx, out_features=m.nf, bias=m.bias is not None)


#: Library modules that are a known layer: timm's whose forward torch.fx cannot trace
#: (TensorFlow 'SAME' padding computed from the input size in Python, CondConv's per-sample
#: kernels), and transformers' Conv1D (a linear layer with its weight transposed, measured op
#: by op otherwise). (module, class) → reader; timm's ScaledStdConv2dSame is not here: its
#: ``gain`` parameter is not a conv's.
_TIMM_LAYERS: dict[tuple[str, str], Callable[[Any], tuple[type, dict[str, Any]] | None]] = {
    ("transformers.pytorch_utils", "Conv1D"): _transformers_conv1d,
    ("timm.layers.conv2d_same", "Conv2dSame"): _conv2d_same,
    ("timm.layers.std_conv", "StdConv2dSame"): _std_conv2d_same,
    ("timm.layers.pool2d_same", "MaxPool2dSame"): _max_pool2d_same,
    ("timm.layers.pool2d_same", "AvgPool2dSame"): _avg_pool2d_same,
    ("timm.layers.cond_conv2d", "CondConv2d"): _cond_conv2d,
}


def _timm_layer(module: Any, made: dict | None) -> Layer | None:
    """The layer of one of timm's :data:`_TIMM_LAYERS`, matched by the class itself (a subclass
    may change ``forward``); timm is never imported here: a module of it exists only if it is."""
    cls = type(module)
    reader = _TIMM_LAYERS.get((cls.__module__, cls.__qualname__))
    if reader is None or getattr(sys.modules.get(cls.__module__), cls.__qualname__, None) is not cls:
        return None
    try:
        found = reader(module)
        return None if found is None else _build(found[0], found[1], made)
    except Exception:  # an argument the layer refuses (a None stride): measure it instead
        return None


_PLANS: dict[type, tuple[tuple[str, bool, bool, bool], ...]] = {}


def _field_plan(spec_cls: type) -> tuple[tuple[str, bool, bool, bool], ...]:
    """(name, inferred from the input, a ``bias: bool`` flag, required) per init field of a
    layer class, worked out once per class rather than once per module."""
    plan = _PLANS.get(spec_cls)
    if plan is None:
        plan = _PLANS[spec_cls] = tuple(
            (f.name, f.name in spec_cls.inferred, f.name == "bias" and f.type.strip() == "bool",
             f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(spec_cls) if f.init)
    return plan


def typed_key(value: Any) -> Any:
    """``value`` as a dict key that also tells ``1``, ``1.0`` and ``True`` apart: they are
    equal and hash alike, but a layer may take one and refuse another. Raises ``TypeError``
    for an unhashable value (the caller then builds the layer afresh)."""
    kind = type(value)
    if kind is tuple or kind is list:
        types = tuple(map(type, value))
        if _HASHABLE.issuperset(types):  # flat (a kernel size): its items' types say the rest
            return kind, tuple(value), types
        return kind, tuple([(t, v) if t in _HASHABLE else typed_key(v)  # typed_key(v), inline
                            for v, t in zip(value, types)])
    if kind not in _HASHABLE:
        hash(value)
    return kind, value


#: Types whose values always hash: most layer arguments are of these.
_HASHABLE = frozenset({int, float, bool, str, type(None), type})

#: Layers already built in this process, by factory and :func:`typed_key` of its arguments:
#: a model analysed again (each analysis traces it afresh) or one with the same convolutions
#: as the last gets its layers without checking them again (a third of reading a CNN's
#: modules). Layers are frozen values made only from these, so the one made first will do.
_BUILT: dict[Any, Layer] = {}
_BUILT_MAX = 8192  # bounded: a process may read many models


def shared_layer(made: dict | None, key: tuple, factory: Callable[..., Layer], *args: Any,
                 **kwargs: Any) -> Layer:
    """``factory(*args, **kwargs)``, built once per distinct ``key`` in ``made``: a thousand
    identical modules or ``x + y`` calls share one checked layer (layers are frozen values).
    ``key`` must name everything ``args`` and ``kwargs`` hold; :data:`_BUILT` keeps the layer
    for later graphs."""
    if made is None:
        return factory(*args, **kwargs)
    try:
        key = typed_key(key)
        layer = made.get(key)
    except TypeError:  # an unhashable argument (a list the spec will refuse, say): build afresh
        return factory(*args, **kwargs)
    if layer is None:
        built = (factory, key)
        layer = _BUILT.get(built)
        if layer is None:
            layer = factory(*args, **kwargs)
            if layer is not None:
                if len(_BUILT) >= _BUILT_MAX:
                    _BUILT.clear()
                _BUILT[built] = layer
        made[key] = layer
    return layer


def _build(spec_cls: type, kwargs: dict[str, Any], made: dict | None) -> Layer:
    # the names once, then the values: no (name, value) pair to key one by one
    return shared_layer(made, (spec_cls, tuple(kwargs), *kwargs.values()), spec_cls, **kwargs)


def blocks_for(graph_nodes: list, submodules: dict[str, Any], output: str,
               returned: dict[str, tuple[str, ...]] | None = None) -> dict[str, BlockInfo]:
    """Module containers become blocks, so the table can fold a ResNet stage into one row.

    ``returned`` names, for a module whose call returned a tuple or list, the node of each item
    in the order returned; other blocks return what is used after them.

    One pass over the nodes (each credited to every module above it): O(nodes × depth), so
    deep models trace in time linear in depth (it was quadratic). Only the prefixes that name a
    module (``submodules``: module path → module, ModuleIndex.modules) collect members.
    """
    consumers: defaultdict[str, set[str]] = defaultdict(set)
    for n in graph_nodes:
        for i in n.inputs:
            consumers[i].add(n.name)
    enclosing = EnclosingPaths(submodules)
    # module path → its nodes in order; dict order = first appearance
    members: defaultdict[str, list] = defaultdict(list)
    for n in graph_nodes:
        for path in enclosing(n.name):
            members[path].append(n)
    blocks: dict[str, BlockInfo] = {}
    for path, inside in members.items():
        sub = submodules[path]
        names = {m.name for m in inside}
        source = next((i for i in inside[0].inputs if i not in names), "input")
        # What the module returns: values used after it, and values nothing uses (PiT's
        # stage returns (x, cls_token) and the model keeps only the class token).
        outs = list((returned or {}).get(path, ())) or [
            m.name for m in inside if m.name == output or m.name not in consumers
            or not consumers[m.name] <= names]  # read outside the module
        out = outs[-1] if outs else inside[-1].name
        blocks[path] = BlockInfo(path, type(sub).__name__, source, out,
                                 tuple(outs) if len(outs) > 1 else ())
    return blocks


def labelled_leaves(value: Any, expand: Callable[[Any], Any] | None = None,
                    label: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of what a forward returned, with its label: dict keys (``logits``,
    ``heads.box``), namedtuple fields, tuple/list indices (``output[1]``). ``expand`` may turn a
    leaf into a structure to descend into (fx's namedtuple-building nodes); the fx and hook
    paths label outputs through this one function, so both name them alike."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from labelled_leaves(v, expand, f"{label}.{k}" if label else str(k))
    elif isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
        for field_name, v in zip(value._fields, value):
            yield from labelled_leaves(v, expand, f"{label}.{field_name}" if label else field_name)
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            yield from labelled_leaves(v, expand, f"{label}[{i}]" if label else f"output[{i}]")
    else:
        inner = expand(value) if expand is not None else None
        if inner is not None:
            yield from labelled_leaves(inner, expand, label)
        else:
            yield label, value


__all__ = ["ModuleIndex", "blocks_for", "labelled_leaves", "module_to_layer", "shared_layer",
           "typed_key"]
