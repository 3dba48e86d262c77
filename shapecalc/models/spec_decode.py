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


def decode(text: str, suffix: str, where: str, max_nodes: int = 200_000) -> tuple[Any, LineFinder]:
    """The data in ``text`` and a function that finds the line of a key path in it; a YAML file
    of more values than ``max_nodes`` can hold stops while it is read."""
    if suffix in (".yaml", ".yml"):
        check_yaml_size(text, where, max_nodes)
    check_nesting(text, where)
    try:
        if suffix == ".json":
            return _json(text, where)
        if suffix in (".yaml", ".yml"):
            return _yaml(text, where, max_nodes)
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


#: YAML events (scalars, mapping and sequence starts and ends, aliases) allowed per node of the
#: node budget: a layer entry with six keys is 14 events. Counted while parsing, so a file that
#: would exceed what the analysis can hold stops before it is built.
EVENTS_PER_NODE = 16
#: Characters of YAML allowed per node of the node budget (12.8 MB at the default 200,000), and
#: never fewer than :data:`MIN_YAML_CHARS`. YAML is read one event at a time at Python speed,
#: ~2 µs an event, so a 31 MB file under :data:`MAX_SPEC_BYTES` took 46 s under load just to
#: reach the event budget; the cap refuses it before parsing. A hand-written block-style layer
#: (``- type: Conv2d`` and four fields) is about 90 characters, a flow one 20-60, and a spec
#: near the budget repeats blocks (``repeat:``) rather than writing every layer.
YAML_CHARS_PER_NODE = 64
MIN_YAML_CHARS = 1 << 20
#: Distinct plain scalars whose constructed value is remembered while one file is read (keys,
#: layer types and small numbers repeat; resolving each again is most of the reading time).
SCALAR_CACHE = 4096


def yaml_char_limit(max_nodes: int) -> int:
    """Most characters of YAML read for a spec within a node budget of ``max_nodes``."""
    return max(MIN_YAML_CHARS, max_nodes * YAML_CHARS_PER_NODE)


def check_yaml_size(text: str, where: str, max_nodes: int) -> None:
    """Refuse, before parsing, YAML longer than :func:`yaml_char_limit` allows."""
    limit = yaml_char_limit(max_nodes)
    if len(text) > limit:
        raise SpecError(f"{where}: {len(text):,} characters of YAML; within the node budget of "
                        f"{max_nodes:,} a YAML spec is at most {limit:,} (raise it with "
                        "--max-nodes, or write the spec as JSON, which is read at C speed)",
                        file=where)


def _yaml(text: str, where: str, max_nodes: int) -> tuple[Any, LineFinder]:
    try:
        import yaml
    except ImportError:
        from shapecalc.core.extras import missing

        raise missing(f"{where}: reading YAML spec files (or use a .json or .toml spec)",
                      "yaml", "yaml") from None
    # Built from the event stream, one value at a time, with the safe constructor for every
    # scalar (data never becomes code): no node tree is kept (it costs ~1.8 KB a node, 3.5 GB
    # for a 31 MB file), and events are counted against the budget as they are read.
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        data = _build_from_events(yaml, loader, where, max_nodes)
    except _TooMuch as err:
        line = err.mark.line + 1
        raise SpecError(f"{where}:{line}: {err.problem}", file=where, line=line) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(f"{where}{line}: invalid YAML: {problem}", file=where,
                        line=mark.line + 1 if mark is not None else None) from None
    finally:
        loader.dispose()
    return data, lambda path: _yaml_line(yaml, loader_cls, text, path)


def _build_from_events(yaml: Any, loader: Any, where: str, max_nodes: int) -> Any:
    """The document's data, from ``loader``'s events; anchors are shared, not copied.

    Reading stops, with one line, as soon as the file holds what no spec within ``max_nodes``
    can: more events than :data:`EVENTS_PER_NODE` a node, more mappings than nodes (every layer
    or block entry is a mapping and costs a node, plus the document itself), a mapping of more
    than :data:`MAX_KEYS` keys, or a list of more than :data:`MAX_LIST_VALUES` entries holding
    a plain value (a layer field holds at most that many; a list of layers holds mappings)."""
    budget = max_nodes * EVENTS_PER_NODE
    mappings = 0
    anchors: dict[str, Any] = {}
    stack: list[list] = []  # [container, pending key (mappings), is_mapping]
    root: list = []
    count = 0
    scalars: dict[tuple, Any] = {}  # (tag, text, implicit) → the constructed (immutable) value

    def place(value: Any, mark: Any) -> None:
        if not stack:
            root.append(value)
            return
        frame = stack[-1]
        if not frame[2]:
            if len(frame[0]) >= MAX_LIST_VALUES and not isinstance(value, (dict, list)):
                raise _TooMuch(f"a list of more than {MAX_LIST_VALUES} entries holding a plain "
                                f"value; a layer field holds at most {MAX_LIST_VALUES} values", mark)
            frame[0].append(value)
        elif frame[1] is _NO_KEY:
            if len(frame[0]) >= MAX_KEYS:
                raise _TooMuch(f"a mapping of more than {MAX_KEYS} keys; a layer entry has a "
                                "few", mark)
            try:
                hash(value)
            except TypeError:
                raise _yaml_problem(yaml, "a mapping key must be a plain value", mark) from None
            frame[1] = value
        else:
            key, frame[1] = frame[1], _NO_KEY
            if key == "<<" and isinstance(value, (dict, list)):  # YAML merge keys
                for part in (value if isinstance(value, list) else [value]):
                    if not isinstance(part, dict):
                        raise _yaml_problem(yaml, "'<<' merges mappings only", mark)
                    for k, v in part.items():
                        frame[0].setdefault(k, v)
            else:
                frame[0][key] = value

    while True:
        event = loader.get_event()
        if event is None or isinstance(event, yaml.StreamEndEvent):
            break
        count += 1
        if count > budget:
            raise SpecError(f"{where}: more than {budget:,} YAML values, more than a spec within "
                            f"the node budget holds (raise it with --max-nodes)", file=where)
        mark = event.start_mark
        if isinstance(event, yaml.ScalarEvent):
            key = (event.tag, event.value, event.implicit)
            value = scalars.get(key, _NO_KEY)
            if value is _NO_KEY:
                value = _scalar(yaml, loader, event)
                if len(scalars) < SCALAR_CACHE:
                    scalars[key] = value
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                raise _yaml_problem(yaml, f"found undefined alias {event.anchor!r}", mark)
            value = anchors[event.anchor]
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if event.tag not in (None, "!", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"):
                raise _yaml_problem(yaml, f"unsupported tag {event.tag!r}", mark)
            mapping = isinstance(event, yaml.MappingStartEvent)
            if mapping:
                mappings += 1
                if mappings > max_nodes + 1:
                    raise _TooMuch(f"more than {max_nodes:,} layer or block entries, the node "
                                    "budget (raise it with --max-nodes)", mark)
            container: Any = {} if mapping else []
            if event.anchor is not None:
                anchors[event.anchor] = container
            place(container, mark)
            stack.append([container, _NO_KEY, mapping])
            continue
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            stack.pop()
            continue
        elif isinstance(event, yaml.DocumentStartEvent) and root:
            raise _yaml_problem(yaml, "expected a single document in the stream", mark)
        else:
            continue
        if getattr(event, "anchor", None) is not None:
            anchors[event.anchor] = value
        place(value, mark)
    return root[0] if root else None


_NO_KEY = object()
#: Keys in one YAML mapping, and plain values in one list, beyond which no spec is valid.
MAX_KEYS = 64
MAX_LIST_VALUES = 64


class _TooMuch(SpecError):
    """Raised inside the event loop; :func:`_yaml` adds the file and line."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem = problem
        self.mark = mark


def _scalar(yaml: Any, loader: Any, event: Any) -> Any:
    """A scalar event's value, by the safe constructor (``<<`` for a merge key)."""
    tag = event.tag if event.tag not in (None, "!") else loader.resolve(
        yaml.ScalarNode, event.value, event.implicit)
    if tag == "tag:yaml.org,2002:merge":
        return "<<"
    value = loader.construct_object(yaml.ScalarNode(
        tag, event.value, event.start_mark, event.end_mark, style=event.style), deep=True)
    loader.constructed_objects.clear()
    loader.recursive_objects.clear()
    return value


def _yaml_problem(yaml: Any, problem: str, mark: Any) -> Exception:
    return yaml.MarkedYAMLError(problem=problem, problem_mark=mark)


def _yaml_line(yaml: Any, loader_cls: Any, text: str, path: KeyPath) -> int | None:
    """The line where ``path`` starts, found by walking the events again (only on an error):
    O(depth) memory, stopping at the first event past the deepest part of ``path`` found."""
    loader = loader_cls(text)
    stack: list[list] = []  # [is_mapping, index or key, expecting key, matched depth]
    best = None
    try:
        while True:
            event = loader.get_event()
            if event is None or isinstance(event, yaml.StreamEndEvent):
                break
            line = event.start_mark.line + 1
            here = _current_path(stack)
            is_key = bool(stack) and stack[-1][0] and stack[-1][2]
            if not is_key and here is not None and here == tuple(path[:len(here)]):
                best = line
                if len(here) == len(path):
                    return line
            if isinstance(event, yaml.ScalarEvent) and is_key:
                stack[-1][1] = event.value
                stack[-1][2] = False
                continue
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                stack.append([isinstance(event, yaml.MappingStartEvent), -1, True, None])
                if not stack[-1][0]:
                    stack[-1][1] = -1
                _advance(stack, inner=True)
                continue
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                stack.pop()
            _advance(stack)
    except yaml.YAMLError:
        pass
    finally:
        loader.dispose()
    return best


def _current_path(stack: list[list]) -> tuple | None:
    parts = []
    for frame in stack:
        if frame[0] and (frame[2] and frame is stack[-1]):
            return tuple(parts)
        parts.append(frame[1])
    return tuple(parts)


def _advance(stack: list[list], inner: bool = False) -> None:
    """After a value: a sequence moves to its next index, a mapping expects its next key."""
    if not stack:
        return
    frame = stack[-1]
    if inner:  # a container just opened: a sequence's first item is index 0
        if not frame[0]:
            frame[1] = 0
        return
    if frame[0]:
        frame[2] = True
    else:
        frame[1] += 1


_TOML_KEY = re.compile(r"^[ \t]*(?:\[\[?([^\]\n]*)|([^=\n#]*)=)", re.MULTILINE)


def check_dotted_keys(text: str, where: str) -> None:
    """Refuse a TOML key of more parts than the nesting limit (``a.b.c…`` with 40,000 parts
    made tomllib build 40,000 nested tables: 3.8 GB from an 80 KB file), naming the line."""
    for match in _TOML_KEY.finditer(text):
        key = match.group(1) if match.group(1) is not None else match.group(2)
        if key.count(".") >= MAX_TEXT_NESTING:
            line = text.count("\n", 0, match.start()) + 1
            raise SpecError(f"{where}:{line}: a dotted key of more than {MAX_TEXT_NESTING:,} parts "
                            "(the nesting limit for spec files)", file=where, line=line)


def _toml(text: str, where: str) -> tuple[Any, LineFinder]:
    import tomllib

    check_dotted_keys(text, where)
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
