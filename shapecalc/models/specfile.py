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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shapecalc.core.blocks import MAX_DEPTH, MAX_NODES, Block, Branches, Residual, Sequential
from shapecalc.core.errors import SpecError
from shapecalc.core.fileio import NotRegularFile, open_input
from shapecalc.core.layers import MERGE_TYPES, Layer, Shape, layer_from_dict
from shapecalc.core.layers.fields import MAX_INT, short_repr
from shapecalc.models.spec_decode import MAX_SPEC_BYTES, KeyPath, decode, format_path
from shapecalc.models.spec_writer import SUFFIXES, save_spec, spec_to_dict

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


class _Problem(Exception):
    """What is wrong (``detail``) at which key path: formatted once, with the line, at the top."""

    def __init__(self, path: KeyPath, detail: str) -> None:
        super().__init__(detail)
        self.path = path
        self.detail = detail


# ------------------------------------------------------------------ reading
def is_spec_path(text: str) -> bool:
    return Path(text).suffix.lower() in SUFFIXES


def load_spec(path: str | Path, *, max_nodes: int | None = None) -> SpecDocument:
    """Read and build a spec file; errors say where (file:line and key path) and what was expected.

    ``max_nodes`` bounds the expanded model (``repeat``, nested repeats, YAML aliases): a spec
    that would expand to more layers and blocks is refused, naming the limit (default 200,000;
    the command line's ``--max-nodes``).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    where = str(p)
    if suffix not in SUFFIXES:
        raise SpecError(f"{p}: spec files end in {', '.join(SUFFIXES)}, not {suffix or 'nothing'}")
    try:
        with open_input(p) as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
        if len(raw) > MAX_SPEC_BYTES:
            raise SpecError(f"{p}: larger than {MAX_SPEC_BYTES // 2**20} MiB, the size limit for "
                            "spec files (a 200,000-layer spec is about 20 MB)", file=where)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise SpecError(f"{p}: no such spec file", file=where) from None
    except NotRegularFile as err:
        raise SpecError(f"{p}: {err.strerror}; a spec is a .json/.yaml/.toml file", file=where) from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{p}: cannot read: {err}", file=where) from None
    budget = MAX_NODES.get() if max_nodes is None else max_nodes
    data, find_line = decode(text, suffix, where, budget)
    try:
        doc = _document(data, budget)
    except _Problem as problem:
        line = find_line(problem.path)
        raise _error(where, problem, line) from None
    doc.path = where
    if doc.name == "model":
        doc.name = p.stem
    return doc


def parse_spec(data: Any, where: str = "<spec>", *, max_nodes: int | None = None) -> SpecDocument:
    """Build a :class:`SpecDocument` from decoded data (a dict, or a bare list of layers)."""
    try:
        return _document(data, MAX_NODES.get() if max_nodes is None else max_nodes)
    except _Problem as problem:
        raise _error(where, problem, None) from None


def _error(where: str, problem: _Problem, line: int | None) -> SpecError:
    key = format_path(problem.path)
    shown = format_path(problem.path, limit=120)
    place = f"{where}:{line}" if line is not None else where
    text = f"{place}: {shown}: {problem.detail}" if key else f"{place}: {problem.detail}"
    return SpecError(text, file=where, line=line, key_path=key, detail=problem.detail)


def _document(data: Any, max_nodes: int) -> SpecDocument:
    if isinstance(data, list):
        data = {"layers": data}
    if not isinstance(data, dict):
        raise _Problem((), f"expected a mapping with a 'layers' list, got {_kind(data)}")
    unknown = sorted(map(str, set(data) - {"name", "input", "layers", "description"}))
    if unknown:
        raise _Problem((), f"unknown top-level key {unknown[0][:100]!r}; expected name, input, layers, "
                       "description")
    if "layers" not in data:
        raise _Problem((), "missing 'layers' (a list of layer entries)")
    name = data.get("name", "model")
    if not isinstance(name, str) or not name:
        raise _Problem(("name",), f"expected a non-empty string, got {short_repr(name)}")
    if not isinstance(data.get("description", ""), str):
        raise _Problem(("description",), f"expected a string, got {short_repr(data['description'])}")
    shape = None
    if "input" in data:
        shape = data["input"]
        if (not isinstance(shape, list) or not 2 <= len(shape) <= 5
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_INT for v in shape)):
            raise _Problem(("input",), "expected a list of 2 to 5 positive integers like "
                           f"[1, 3, 224, 224], got {short_repr(shape)}")
        shape = tuple(shape)
    builder = _Builder(max_nodes)
    block = Sequential(builder.children(data["layers"], ("layers",), 1))
    return SpecDocument(block, name, shape)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), f"a {type(value).__name__}")


class _Builder:
    """Expands entries into layers and blocks within a node budget and a depth limit.

    Every layer, block and list entry built costs one node, so ``repeat``, nested repeats and
    YAML aliases that refer to a list many times (a "billion laughs" file) all stop at
    ``max_nodes``; a repeated entry is built once and its copies share it (blocks and layers
    are immutable), after checking that ``count`` copies fit.
    """

    def __init__(self, max_nodes: int) -> None:
        self.max_nodes = max_nodes
        self.used = 0
        # A layer entry met again (a YAML alias) is the same immutable layer: build it once.
        self.layers: dict[int, Layer] = {}

    def spend(self, nodes: int, path: KeyPath) -> None:
        self.used += nodes
        if self.used > self.max_nodes:
            raise _Problem(path, f"the model expands to more than {self.max_nodes:,} layers and "
                           f"blocks, the node budget (raise it with max_nodes=, on the command "
                           f"line --max-nodes)")

    def children(self, entries: Any, path: KeyPath, depth: int) -> dict[str, Any]:
        """A list of entries → ordered ``{child name: layer or block}`` (``repeat`` expanded)."""
        if not isinstance(entries, list):
            raise _Problem(path, f"expected a list of layer entries, got {_kind(entries)}")
        if depth > MAX_DEPTH:
            raise _Problem(path, f"blocks nested deeper than {MAX_DEPTH} levels, the nesting limit")
        out: dict[str, Any] = {}
        for i, entry in enumerate(entries):
            sub = path + (i,)
            count = _repeat(entry, sub)
            base = _name(entry, sub)
            before = self.used
            child = self.entry(entry, sub, depth)
            if count > 1:
                self.spend((self.used - before) * (count - 1), sub + ("repeat",))
            for r in range(count):
                key = _free_index(out) if base is None else (base if count == 1 else f"{base}_{r}")
                if key in out:
                    raise _Problem(sub + ("name",), f"{key!r} is used twice in the same block")
                out[key] = child
        return out

    def entry(self, entry: Any, path: KeyPath, depth: int) -> Layer | Block:
        """One entry (a layer or a block) at ``path``."""
        self.spend(1, path)
        if not isinstance(entry, dict):
            raise _Problem(path, f"expected a mapping like {{\"type\": \"Conv2d\", ...}}, got {_kind(entry)}")
        kind = entry.get("type")
        if kind is None:
            raise _Problem(path, "missing 'type' (a torch layer name like \"Conv2d\" "
                           f"or one of {', '.join(BLOCK_TYPES)})")
        if not isinstance(kind, str):
            raise _Problem(path + ("type",), f"expected a layer name like \"Conv2d\", got "
                           f"{_kind(kind)} {short_repr(kind)}")
        if kind == "Concat" and "branches" in entry:
            kind = "Branches"
        if isinstance(kind, str) and kind in BLOCK_TYPES:
            return self.block(kind, entry, path, depth)
        layer = self.layers.get(id(entry))
        if layer is None:
            layer = self.layers[id(entry)] = _layer(entry, path)
        return layer

    def block(self, kind: str, entry: dict, path: KeyPath, depth: int) -> Block:
        unknown = sorted(map(str, set(entry) - _BLOCK_KEYS[kind]))
        if unknown:
            raise _Problem(path + (unknown[0],), f"{kind} takes {', '.join(sorted(_BLOCK_KEYS[kind] - {'type'}))}")
        label = entry.get("label", kind)
        if not isinstance(label, str):
            raise _Problem(path + ("label",), f"expected a string, got {short_repr(label)}")
        inner = depth + 1
        if kind == "Sequential":
            if "layers" not in entry:
                raise _Problem(path, "a Sequential needs 'layers' (a list)")
            return Sequential(self.children(entry["layers"], path + ("layers",), inner), label=label)
        if kind == "Residual":
            if "body" not in entry:
                raise _Problem(path, "a Residual needs 'body' (a list or an entry)")
            body = self.part(entry["body"], path + ("body",), inner)
            shortcut = self.part(entry["shortcut"], path + ("shortcut",), inner) if "shortcut" in entry else None
            post = None
            if "post" in entry:
                post = self.entry(entry["post"], path + ("post",), inner)
                if not isinstance(post, Layer):
                    raise _Problem(path + ("post",), "expected one layer (like {\"type\": \"ReLU\"})")
            return Residual(body, shortcut, post, label=label)
        branches = entry.get("branches")
        if not isinstance(branches, list) or len(branches) < 2:
            raise _Problem(path + ("branches",), "expected a list of at least two branches "
                           "(each a list of entries, [] for the identity)")
        named: dict[str, Any] = {}
        for i, branch in enumerate(branches):
            sub = path + ("branches", i)
            key = _name(branch, sub) or str(i)
            if key in named:
                raise _Problem(sub + ("name",), f"{key!r} is used twice in the same block")
            named[key] = self.part(branch, sub, inner)
        dim = entry.get("dim", 1)
        if not isinstance(dim, int) or isinstance(dim, bool) or abs(dim) > 64:
            raise _Problem(path + ("dim",), f"expected an integer dimension, got {short_repr(dim)}")
        return Branches(named, dim=dim, label=label)

    def part(self, value: Any, path: KeyPath, depth: int) -> Layer | Block:
        """A residual body/shortcut or a branch: a list is a Sequential, a mapping one entry."""
        if depth > MAX_DEPTH:
            raise _Problem(path, f"blocks nested deeper than {MAX_DEPTH} levels, the nesting limit")
        if isinstance(value, list):
            self.spend(1, path)
            return Sequential(self.children(value, path, depth))
        return self.entry(value, path, depth)


def _free_index(taken: dict[str, Any]) -> str:
    """An unnamed entry's name: its position, or (when an earlier entry was named that, as in
    ``[{"type": "ReLU", "name": "1"}, {"type": "Tanh"}]``) its position with a suffix."""
    key = str(len(taken))
    suffix = 1
    while key in taken:
        key = f"{len(taken)}_{suffix}"
        suffix += 1
    return key


def _repeat(entry: Any, path: KeyPath) -> int:
    if not isinstance(entry, dict):
        return 1
    count = entry.get("repeat", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise _Problem(path + ("repeat",), f"expected a positive integer, got {short_repr(count)}")
    return count


def _name(entry: Any, path: KeyPath) -> str | None:
    if not isinstance(entry, dict) or "name" not in entry:
        return None
    name = entry["name"]
    if isinstance(name, int) and not isinstance(name, bool) and abs(name) <= MAX_INT:
        name = str(name)
    if not isinstance(name, str) or not name or "." in name or len(name) > 200:
        raise _Problem(path + ("name",), f"expected a non-empty name without '.', got {short_repr(name)}")
    return name


def _layer(entry: dict, path: KeyPath) -> Layer:
    name = entry["type"]
    if name in MERGE_TYPES:
        raise _Problem(path + ("type",), f"{name} is a merge node; write it as a Residual (Add) or "
                       "Branches (Concat) block")
    try:
        return layer_from_dict(entry, container_keys=("name", "repeat"))
    except SpecError as err:
        key: KeyPath = (err.key_path,) if err.key_path else ()
        detail = err.detail
        if key == ("type",):
            detail += "; expected a torch.nn layer name or Sequential/Residual/Branches"
        raise _Problem(path + key, detail) from None


__all__ = ["SpecDocument", "is_spec_path", "load_spec", "parse_spec", "save_spec", "spec_to_dict"]
