"""What both ways of reading an ``nn.Module`` (``fx_import``'s chain/hooks and ``fx_convert``'s fx
pass) share: a torch module's layer spec and its containers as blocks.

It sits below both fx modules so that neither imports the other's private helpers.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

from ..graph import BlockInfo
from ..layers import LAYER_TYPES, MERGE_TYPES, Layer
from .fx_ops import MODULE_ARGUMENTS


def module_to_layer(module: Any) -> Layer | None:
    """The layer spec equal to a ``torch.nn`` module, read from its attributes (``None`` if unknown).

    Lazy modules that have not run yet keep their inferred fields ``None``, exactly like the
    spec-file convention, so the engine infers them from the input.
    """
    cls = type(module)
    name = cls.__name__
    if not cls.__module__.startswith("torch.nn"):
        name = cls.__dict__.get("shapecalc_type")  # a spec build's single-output twin (LSTM …)
        if name is None:
            return None
    lazy = name.startswith("Lazy")
    base = name[4:] if lazy else name
    spec_cls = LAYER_TYPES.get(base)
    if spec_cls is None or base in MERGE_TYPES or spec_cls.__module__.endswith("functional"):
        return None
    reader = MODULE_ARGUMENTS.get(base)
    if reader is not None:  # attributes that are not the constructor's arguments
        try:
            return spec_cls(**reader(module))
        except Exception:  # an unknown activation, an argument the spec rejects: measure it
            return None
    uninitialized = lazy and module.has_uninitialized_params()
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(spec_cls):
        if not f.init:
            continue
        if f.name in spec_cls.inferred and uninitialized:
            kwargs[f.name] = None
            continue
        if f.name == "bias" and f.type.strip() == "bool":
            kwargs["bias"] = getattr(module, "bias", None) is not None
            continue
        if not hasattr(module, f.name):
            if f.default is dataclasses.MISSING:
                return None
            continue
        value = getattr(module, f.name)
        if type(value).__name__ in ("Size", "list"):
            value = tuple(value)
        kwargs[f.name] = value
    try:
        return spec_cls(**kwargs)
    except Exception:  # an argument combination the spec rejects: measure it instead
        return None


def blocks_for(graph_nodes: list, root: Any, output: str) -> dict[str, BlockInfo]:
    """Module containers become blocks, so the table can fold a ResNet stage into one row.

    One pass over the nodes (each credited to every module path above it): O(nodes × depth),
    so deep models trace in time linear in depth (it was quadratic).
    """
    consumers: dict[str, set[str]] = {}
    for n in graph_nodes:
        for i in n.inputs:
            consumers.setdefault(i, set()).add(n.name)
    members: dict[str, list] = {}  # prefix → its nodes in order; dict order = first appearance
    for n in graph_nodes:
        parts = n.name.split(".")
        for i in range(1, len(parts)):
            members.setdefault(".".join(parts[:i]), []).append(n)
    blocks: dict[str, BlockInfo] = {}
    for path, inside in members.items():
        try:
            sub = root.get_submodule(path)
        except AttributeError:
            continue
        names = {m.name for m in inside}
        source = next((i for i in inside[0].inputs if i not in names), "input")
        out = inside[-1].name
        for m in inside:
            if m.name == output or consumers.get(m.name, set()) - names:
                out = m.name
        blocks[path] = BlockInfo(path, type(sub).__name__, source, out)
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


__all__ = ["blocks_for", "labelled_leaves", "module_to_layer"]
