"""Decoding spec files (JSON, YAML, TOML) within bounds, and finding the line of a key path.

A spec file is data from anywhere, so reading one is bounded: its size, its nesting (parsers
recurse, and libyaml's C parser crashes outright on deep flow nesting) and the digits of its
numbers. When building the spec fails at a key path (``layers[3].kernel_size``), the line is
found without parsing the file again where the format allows: YAML keeps the node tree of the
one parse; JSON walks the text once, skipping values at C speed; TOML gives the key path alone.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from shapecalc.core.errors import SpecError

#: Largest spec file read (a 200,000-layer spec written by ``save_spec`` is about 20 MB).
MAX_SPEC_BYTES = 32 * 2**20
#: Deepest bracket nesting or indentation handed to a parser (blocks nest far less).
MAX_TEXT_NESTING = 1_000
MAX_INDENT = 10_000

KeyPath = tuple[str | int, ...]
#: ``key path → line`` (``None`` where the path cannot be found), built by :func:`decode`.
LineFinder = Callable[[KeyPath], "int | None"]

_BRACKETS = re.compile(r"[\[\]{}]")
_INDENT = re.compile(r"^[ \t]*", re.MULTILINE)


def _no_lines(path: KeyPath) -> int | None:
    return None


def check_nesting(text: str, where: str) -> None:
    """Refuse text nested deeper than any parser may safely recurse, naming the line."""
    depth = 0
    for match in _BRACKETS.finditer(text):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_TEXT_NESTING:
            line = text.count("\n", 0, match.start()) + 1
            raise SpecError(f"{where}:{line}: nested deeper than {MAX_TEXT_NESTING:,} levels "
                            "(the nesting limit for spec files)", file=where, line=line)
    widest = max((m.end() - m.start() for m in _INDENT.finditer(text)), default=0)
    if widest > MAX_INDENT:
        raise SpecError(f"{where}: indented more than {MAX_INDENT:,} columns "
                        "(the nesting limit for spec files)", file=where)


def decode(text: str, suffix: str, where: str) -> tuple[Any, LineFinder]:
    """The data in ``text`` and a function that finds the line of a key path in it."""
    check_nesting(text, where)
    try:
        if suffix == ".json":
            return _json(text, where)
        if suffix in (".yaml", ".yml"):
            return _yaml(text, where)
        return _toml(text, where)
    except RecursionError:
        raise SpecError(f"{where}: nested too deeply to parse (the nesting limit for spec files)",
                        file=where) from None
    except ValueError as err:  # an integer beyond Python's 4,300-digit conversion limit
        if isinstance(err, SpecError):
            raise
        raise SpecError(f"{where}: a number in the file is too long to read ({str(err)[:80]})",
                        file=where) from None


def _json(text: str, where: str) -> tuple[Any, LineFinder]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SpecError(f"{where}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}", file=where,
                        line=err.lineno) from None
    return data, lambda path: _json_line(text, path)


_WS = re.compile(r"[ \t\n\r]*")


def _json_line(text: str, path: KeyPath) -> int | None:
    """The line where ``path`` starts, found by one forward walk that skips unrelated values
    with the C decoder (``raw_decode``) instead of building the document again."""
    decoder = json.JSONDecoder()
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    found = pos
    try:
        for part in path:
            if isinstance(part, str):
                pos = _json_member(decoder, text, pos, part)
            else:
                pos = _json_element(decoder, text, pos, part)
            if pos is None:
                break
            found = pos
    except (ValueError, RecursionError):  # malformed beyond where we look: the last place found
        pass
    return text.count("\n", 0, found) + 1


def _json_member(decoder: json.JSONDecoder, text: str, pos: int, name: str) -> int | None:
    if text[pos:pos + 1] != "{":
        return None
    pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
    while text[pos:pos + 1] == '"':
        key, pos = decoder.raw_decode(text, pos)
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if text[pos:pos + 1] != ":":
            return None
        pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
        if key == name:
            return pos
        _, pos = decoder.raw_decode(text, pos)
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if text[pos:pos + 1] != ",":
            return None
        pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
    return None


def _json_element(decoder: json.JSONDecoder, text: str, pos: int, index: int) -> int | None:
    if text[pos:pos + 1] != "[":
        return None
    pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
    for _ in range(index):
        if text[pos:pos + 1] == "]":
            return None
        _, pos = decoder.raw_decode(text, pos)
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if text[pos:pos + 1] != ",":
            return None
        pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
    return None if text[pos:pos + 1] in ("]", "") else pos


def _yaml(text: str, where: str) -> tuple[Any, LineFinder]:
    try:
        import yaml
    except ImportError:
        from shapecalc.core.extras import missing

        raise missing(f"{where}: reading YAML spec files (or use a .json or .toml spec)",
                      "yaml", "yaml") from None
    # One parse that keeps the node tree (for line numbers) and builds the data from it, with
    # the safe constructor only (data never becomes code); libyaml when installed, for speed.
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(f"{where}{line}: invalid YAML: {problem}", file=where,
                        line=mark.line + 1 if mark is not None else None) from None
    finally:
        loader.dispose()
    return data, lambda path: _yaml_line(yaml, node, path)


def _yaml_line(yaml: Any, node: Any, path: KeyPath) -> int | None:
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in path:
        if isinstance(part, str) and isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(part, int) and isinstance(node, yaml.SequenceNode) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def _toml(text: str, where: str) -> tuple[Any, LineFinder]:
    import tomllib

    try:
        return tomllib.loads(text), _no_lines
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{where}: invalid TOML: {err}", file=where) from None


def format_path(path: KeyPath, limit: int | None = None) -> str:
    """``("layers", 3, "kernel_size")`` → ``layers[3].kernel_size``; with ``limit``, a path
    longer than that many characters keeps its two ends (``layers[0]…(95 levels)….body``)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    if limit is not None and len(out) > limit and len(path) > 6:
        head, tail = format_path(path[:3]), format_path(path[-3:])
        if not isinstance(path[-3], int):
            tail = "." + tail
        return f"{head}…({len(path) - 6} more levels)…{tail}"
    return out
