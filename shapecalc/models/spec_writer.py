"""Writing spec files: a spec tree as the data ``shapecalc.models.specfile`` reads back identically.

Only arguments that differ from torch's defaults are written and inferred sizes are left out,
so a saved zoo model reads like a hand-written spec and can be edited as one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shapecalc.core.blocks import Block, Branches, Residual, Sequential, check_size
from shapecalc.core.errors import SpecError
from shapecalc.core.fileio import write_text
from shapecalc.core.layers import Layer, Shape, layer_to_dict

SUFFIXES = (".json", ".yaml", ".yml", ".toml")


def spec_to_dict(block: Block, name: str = "model", input_shape: Shape | None = None) -> dict:
    """The data a spec file holds for ``block``; :func:`parse_spec` reads it back identically."""
    check_size(block)  # the writer recurses per level: refuse what the reader would refuse
    out: dict[str, Any] = {"name": name}
    if input_shape is not None:
        out["input"] = list(input_shape)
    if not isinstance(block, Sequential):
        out["layers"] = [_child_entry("0", 0, block)]
    else:
        out["layers"] = _list(block)
    return out


def _list(block: Sequential) -> list:
    return [_child_entry(n, i, c) for i, (n, c) in enumerate(block.children())]


def _child_entry(name: str, index: int, child: Any) -> dict:
    entry = _entry_of(child)
    if name != str(index):
        entry = {"type": entry.pop("type"), "name": name, **entry}
    return entry


def _is_plain(seq: Block) -> bool:
    return (type(seq) is Sequential and seq.label == "Sequential"
            and all(n == str(i) for i, (n, _) in enumerate(seq.children())))


def _part_of(child: Any) -> Any:
    return _list(child) if isinstance(child, Sequential) and _is_plain(child) else _entry_of(child)


def _entry_of(child: Any) -> dict:
    if isinstance(child, Layer):
        data = layer_to_dict(child)
        for inferred in type(child).inferred:  # None = inferred, which is the reader's default
            if data.get(inferred, 0) is None:
                del data[inferred]
        return data
    out: dict[str, Any]
    if isinstance(child, Sequential):
        out = {"type": "Sequential", "layers": _list(child)}
    elif isinstance(child, Residual):
        parts = dict(child.children())
        out = {"type": "Residual", "body": _part_of(parts["body"])}
        if "shortcut" in parts:
            out["shortcut"] = _part_of(parts["shortcut"])
        if "post" in parts:
            out["post"] = _entry_of(parts["post"])
    elif isinstance(child, Branches):
        branches = []
        for i, (n, b) in enumerate(child.children()):
            part = _part_of(b)
            if n != str(i):
                part = _entry_of(b)
                part = {"type": part.pop("type"), "name": n, **part}
            branches.append(part)
        out = {"type": "Branches", "branches": branches}
        if child.dim != 1:
            out["dim"] = child.dim
    else:
        raise SpecError(f"cannot write a {type(child).__name__} block to a spec file; "
                        "spec files hold Sequential, Residual and Branches blocks")
    default = {"Sequential": "Sequential", "Residual": "Residual", "Branches": "Branches"}[out["type"]]
    if child.label != default:
        out = {"type": out.pop("type"), "label": child.label, **out}
    return out


def save_spec(block: Block, path: str | Path, name: str = "model", input_shape: Shape | None = None,
              overwrite: bool = False) -> Path:
    """Write ``block`` as a spec file; the format follows the suffix. Never overwrites by default.

    The file is written to a temporary beside it and renamed into place (:mod:`shapecalc.core.fileio`).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise SpecError(f"{p}: spec files end in {', '.join(SUFFIXES)}")
    if p.exists() and not overwrite:
        raise SpecError(f"{p}: already exists; choose another name (spec files are never overwritten)")
    data = spec_to_dict(block, name, input_shape)
    if suffix == ".json":
        text = json.dumps(data, indent=1) + "\n"
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            from shapecalc.core.extras import missing

            raise missing("writing YAML spec files", "yaml", "yaml") from None
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
    else:
        text = dumps_toml(data)
    write_text(p, text, param="path")
    return p


def dumps_toml(data: dict) -> str:
    """Spec data as TOML (``tomli-w``): one ``[[layers]]`` table per layer, nested blocks inline.

    TOML has no null, so a ``None`` anywhere is refused with its key path rather than dropped.
    """
    import tomli_w

    _refuse_null(data, "")
    return tomli_w.dumps(data)


def _refuse_null(value: Any, path: str) -> None:
    if value is None:
        raise SpecError(f"{path}: TOML has no null; save this spec as .json or .yaml instead")
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_null(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _refuse_null(item, f"{path}[{i}]")


__all__ = ["SUFFIXES", "dumps_toml", "save_spec", "spec_to_dict"]
