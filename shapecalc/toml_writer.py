"""A minimal TOML writer for spec files (the standard library reads TOML but cannot write it).

Spec data is a small tree of dicts, lists, strings, numbers and booleans: top-level scalars,
then one ``[[layers]]`` table per layer with nested blocks as inline values. TOML has no null,
so a ``None`` anywhere is refused with the key path rather than silently dropped.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import SpecError

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key)


def _value(value: Any, path: str) -> str:
    if value is None:
        raise SpecError(f"{path}: TOML has no null; save this spec as .json or .yaml instead")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v, f"{path}[{i}]") for i, v in enumerate(value)) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(k)} = {_value(v, f'{path}.{k}')}" for k, v in value.items())
        return "{" + inner + "}" if inner else "{}"
    raise SpecError(f"{path}: cannot write a {type(value).__name__} to TOML")


def dumps_toml(data: dict) -> str:
    """Scalars first, then every list of tables (like ``layers``) as ``[[key]]`` sections."""
    lines: list[str] = []
    tables: list[tuple[str, list]] = []
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value, key)}")
    for key, items in tables:
        for i, item in enumerate(items):
            lines.append("")
            lines.append(f"[[{_key(key)}]]")
            for k, v in item.items():
                lines.append(f"{_key(k)} = {_value(v, f'{key}[{i}].{k}')}")
    return "\n".join(lines) + "\n"
