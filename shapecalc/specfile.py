"""Spec files: a network written as data (JSON, YAML or TOML) in torch's own layer vocabulary.

A spec file is what a user writes when they want the table before they write the module, and
what ``save_spec`` writes so that a zoo model can be edited by hand. It needs no torch. Every
error names the file and either the line (syntax) or the key path (``layers[3].kernel_size``)
plus what was expected, because a spec file is edited by people, not generated.

Format (JSON shown; YAML and TOML hold the same tree)::

    {"name": "tiny", "input": [1, 3, 32, 32],
     "layers": [
        {"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1},
        {"type": "Residual", "body": [{"type": "Conv2d", "out_channels": 16, "kernel_size": 3,
                                      "padding": 1}], "post": {"type": "ReLU"}},
        {"type": "Branches", "branches": [[{"type": "Conv2d", "out_channels": 8, "kernel_size": 1}],
                                          []]},
        {"type": "Sequential", "name": "head", "repeat": 1, "layers": [{"type": "Flatten"}]}]}
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .blocks import Block, Branches, Residual, Sequential
from .errors import ShapecalcError, SpecError
from .layers import LAYER_TYPES, MERGE_TYPES, Layer, Shape
from .spec_writer import SUFFIXES, save_spec, spec_to_dict

BLOCK_TYPES = ("Sequential", "Residual", "Branches")
_BLOCK_KEYS = {
    "Sequential": {"type", "name", "label", "layers", "repeat"},
    "Residual": {"type", "name", "label", "body", "shortcut", "post", "repeat"},
    "Branches": {"type", "name", "label", "branches", "dim", "repeat"},
}


@dataclass
class SpecDocument:
    """What a spec file holds: the block tree, and optionally its name and default input."""

    block: Block
    name: str = "model"
    input_shape: Shape | None = None
    path: str = ""


# ------------------------------------------------------------------ reading
def is_spec_path(text: str) -> bool:
    return Path(text).suffix.lower() in SUFFIXES


def load_spec(path: str | Path) -> SpecDocument:
    """Read and build a spec file; errors say where (file:line or key path) and what was expected."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise SpecError(f"{p}: spec files end in {', '.join(SUFFIXES)}, not {suffix or 'nothing'}")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{p}: no such spec file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{p}: cannot read: {err}") from None
    data = _decode(text, suffix, str(p))
    try:
        doc = parse_spec(data, str(p))
    except SpecError as err:
        raise _with_line(err, text, suffix, str(p)) from None
    doc.path = str(p)
    if doc.name == "model":
        doc.name = p.stem
    return doc


_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _with_line(err: SpecError, text: str, suffix: str, where: str) -> SpecError:
    """Add the line of the key path (``file:12: layers[3].kernel_size: ...``) where it can be found.

    PyYAML's composer keeps positions (and reads JSON too); TOML keeps the key path alone.
    """
    message = str(err)
    prefix = f"{where}: "
    if suffix == ".toml" or not message.startswith(prefix):
        return err
    path = message[len(prefix):].split(":", 1)[0].strip()
    try:
        import yaml

        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except Exception:  # no PyYAML, or text it reads differently: the key path alone will do
        return err
    line = None
    for name, index in _TOKEN.findall(path):
        if node is None:
            break
        line = node.start_mark.line + 1
        if name and isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == name), None)
        elif index and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            node = node.value[int(index)]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    if line is None:
        return err
    return SpecError(f"{where}:{line}: {message[len(prefix):]}")


def _decode(text: str, suffix: str, where: str) -> Any:
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(f"{where}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from None
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            from .extras import missing

            raise missing(f"{where}: reading YAML spec files (or use a .json or .toml spec)",
                          "yaml", "yaml") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise SpecError(f"{where}{line}: invalid YAML: {problem}") from None
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{where}: invalid TOML: {err}") from None


def parse_spec(data: Any, where: str = "<spec>") -> SpecDocument:
    """Build a :class:`SpecDocument` from decoded data (a dict, or a bare list of layers)."""
    if isinstance(data, list):
        data = {"layers": data}
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping with a 'layers' list, got {_kind(data)}")
    unknown = sorted(set(data) - {"name", "input", "layers", "description"})
    if unknown:
        raise SpecError(f"{where}: unknown top-level key {unknown[0]!r}; expected name, input, layers")
    if "layers" not in data:
        raise SpecError(f"{where}: missing 'layers' (a list of layer entries)")
    name = data.get("name", "model")
    if not isinstance(name, str) or not name:
        raise SpecError(f"{where}: name: expected a non-empty string, got {name!r}")
    shape = None
    if "input" in data:
        shape = data["input"]
        if (not isinstance(shape, list) or not 2 <= len(shape) <= 5
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
            raise SpecError(f"{where}: input: expected a list of 2 to 5 positive integers "
                            f"like [1, 3, 224, 224], got {shape!r}")
        shape = tuple(shape)
    block = Sequential(_children(data["layers"], "layers", where))
    return SpecDocument(block, name, shape)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), f"a {type(value).__name__}")


def _children(entries: Any, path: str, where: str) -> dict[str, Any]:
    """A list of entries → ordered ``{child name: layer or block}`` (``repeat`` expanded)."""
    if not isinstance(entries, list):
        raise SpecError(f"{where}: {path}: expected a list of layer entries, got {_kind(entries)}")
    out: dict[str, Any] = {}
    for i, entry in enumerate(entries):
        sub = f"{path}[{i}]"
        count = _repeat(entry, sub, where)
        base = _name(entry, sub, where)
        for r in range(count):
            if base is None:
                key = str(len(out))
            else:
                key = base if count == 1 else f"{base}_{r}"
            if key in out:
                raise SpecError(f"{where}: {sub}.name: {key!r} is used twice in the same block")
            out[key] = _entry(entry, sub, where)
    return out


def _repeat(entry: Any, path: str, where: str) -> int:
    if not isinstance(entry, dict):
        return 1
    count = entry.get("repeat", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise SpecError(f"{where}: {path}.repeat: expected a positive integer, got {count!r}")
    return count


def _name(entry: Any, path: str, where: str) -> str | None:
    if not isinstance(entry, dict) or "name" not in entry:
        return None
    name = entry["name"]
    if isinstance(name, int) and not isinstance(name, bool):
        name = str(name)
    if not isinstance(name, str) or not name or "." in name:
        raise SpecError(f"{where}: {path}.name: expected a non-empty name without '.', got {name!r}")
    return name


def _entry(entry: Any, path: str, where: str) -> Layer | Block:
    """One entry (a layer or a block) at ``path``."""
    if not isinstance(entry, dict):
        raise SpecError(f"{where}: {path}: expected a mapping like {{\"type\": \"Conv2d\", ...}}, "
                        f"got {_kind(entry)}")
    kind = entry.get("type")
    if kind is None:
        raise SpecError(f"{where}: {path}: missing 'type' (a torch layer name like \"Conv2d\" "
                        f"or one of {', '.join(BLOCK_TYPES)})")
    if kind == "Concat" and "branches" in entry:
        kind = "Branches"
    if kind in BLOCK_TYPES:
        return _block(kind, entry, path, where)
    return _layer(entry, path, where)


def _label(entry: dict, default: str, path: str, where: str) -> str:
    label = entry.get("label", default)
    if not isinstance(label, str):
        raise SpecError(f"{where}: {path}.label: expected a string, got {label!r}")
    return label


def _block(kind: str, entry: dict, path: str, where: str) -> Block:
    unknown = sorted(set(entry) - _BLOCK_KEYS[kind])
    if unknown:
        raise SpecError(f"{where}: {path}.{unknown[0]}: {kind} takes "
                        f"{', '.join(sorted(_BLOCK_KEYS[kind] - {'type'}))}")
    label = _label(entry, kind, path, where)
    if kind == "Sequential":
        if "layers" not in entry:
            raise SpecError(f"{where}: {path}: a Sequential needs 'layers' (a list)")
        return Sequential(_children(entry["layers"], f"{path}.layers", where), label=label)
    if kind == "Residual":
        if "body" not in entry:
            raise SpecError(f"{where}: {path}: a Residual needs 'body' (a list or an entry)")
        body = _part(entry["body"], f"{path}.body", where)
        shortcut = _part(entry["shortcut"], f"{path}.shortcut", where) if "shortcut" in entry else None
        post = None
        if "post" in entry:
            post = _entry(entry["post"], f"{path}.post", where)
            if not isinstance(post, Layer):
                raise SpecError(f"{where}: {path}.post: expected one layer (like {{\"type\": \"ReLU\"}})")
        return Residual(body, shortcut, post, label=label)
    branches = entry.get("branches")
    if not isinstance(branches, list) or len(branches) < 2:
        raise SpecError(f"{where}: {path}.branches: expected a list of at least two branches "
                        f"(each a list of entries, [] for the identity)")
    named: dict[str, Any] = {}
    for i, branch in enumerate(branches):
        sub = f"{path}.branches[{i}]"
        key = _name(branch, sub, where) or str(i)
        if key in named:
            raise SpecError(f"{where}: {sub}.name: {key!r} is used twice in the same block")
        named[key] = _part(branch, sub, where)
    dim = entry.get("dim", 1)
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise SpecError(f"{where}: {path}.dim: expected an integer, got {dim!r}")
    return Branches(named, dim=dim, label=label)


def _part(value: Any, path: str, where: str) -> Layer | Block:
    """A residual body/shortcut or a branch: a list is a Sequential, a mapping one entry."""
    if isinstance(value, list):
        return Sequential(_children(value, path, where))
    return _entry(value, path, where)


def _layer(entry: dict, path: str, where: str) -> Layer:
    name = entry["type"]
    cls = LAYER_TYPES.get(name) if isinstance(name, str) else None
    if cls is None or name in MERGE_TYPES:
        import difflib

        hint = difflib.get_close_matches(str(name), list(LAYER_TYPES) + list(BLOCK_TYPES), n=1)
        raise SpecError(f"{where}: {path}.type: unknown layer type {name!r}"
                        + (f" (did you mean {hint[0]!r}?)" if hint else "")
                        + "; expected a torch.nn layer name or Sequential/Residual/Branches")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in entry.items():
        if key in ("type", "name", "repeat"):
            continue
        if key not in fields:
            raise SpecError(f"{where}: {path}.{key}: {name} does not take {key!r}; "
                            f"it takes {', '.join(fields)}")
        _check_type(value, str(fields[key].type), f"{path}.{key}", where)
        kwargs[key] = _tuples(value)
    for inferred in cls.inferred:
        kwargs.setdefault(inferred, None)
    missing = [f for f, spec in fields.items() if f not in kwargs
               and spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING]
    if missing:
        raise SpecError(f"{where}: {path}: {name} needs {', '.join(missing)}")
    try:
        return cls(**kwargs)
    except (ShapecalcError, TypeError, ValueError) as err:
        message = getattr(err, "message", str(err))
        raise SpecError(f"{where}: {path}: {name}: {message}") from None


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
          "tuple": "a list of integers", "None": "null"}


def _check_type(value: Any, annotation: str, path: str, where: str) -> None:
    """Check a value against the field's annotation text: a data file cannot be trusted to be typed."""
    allowed = {t for t in _WORDS if t in annotation}
    if "IntOrTuple" in annotation:
        allowed |= {"int", "tuple"}
    if not allowed:
        return
    if isinstance(value, bool):
        ok = "bool" in allowed
    elif isinstance(value, int):
        ok = bool({"int", "float"} & allowed)
    elif isinstance(value, float):
        ok = "float" in allowed
    elif isinstance(value, str):
        ok = "str" in allowed
    elif value is None:
        ok = "None" in allowed
    elif isinstance(value, list):
        ok = "tuple" in allowed and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                        or v is None for v in value)
    else:
        ok = False
    if not ok:
        order = [t for t in ("int", "float", "tuple", "str", "bool", "None") if t in allowed]
        expected = " or ".join(_WORDS[t] for t in order)
        raise SpecError(f"{where}: {path}: expected {expected}, got {value!r}")


__all__ = ["SpecDocument", "is_spec_path", "load_spec", "parse_spec", "save_spec", "spec_to_dict"]
