"""Built-in architectures, each defined once as a spec tree.

The same spec is analysed for tables and graphs and built into the torch module that is
trained, so the two cannot drift apart. Each entry records its default input and its source.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

from shapecalc.core.blocks import Block
from shapecalc.core.errors import SpecError
from shapecalc.core.layers import Shape


@dataclass(frozen=True)
class ZooEntry:
    name: str
    build: Callable[..., Block]
    default_input: Shape
    description: str
    source: str

    def spec(self, **kwargs) -> Block:
        return self.build(**kwargs)


ZOO: dict[str, ZooEntry] = {}


def register(name: str, default_input: Shape, description: str, source: str):
    """Decorator adding a spec factory to :data:`ZOO` under ``name``."""

    def wrap(fn: Callable[..., Block]) -> Callable[..., Block]:
        if name in ZOO:
            raise ValueError(f"zoo model {name!r} registered twice")
        ZOO[name] = ZooEntry(name, fn, tuple(default_input), description, source)
        return fn

    return wrap


def get_entry(name: str) -> ZooEntry:
    """Look a model up by name; an unknown name suggests the closest ones."""
    key = name.strip().lower()
    if key in ZOO:
        return ZOO[key]
    hints = difflib.get_close_matches(key, ZOO, n=3, cutoff=0.5)
    hint = f" (did you mean {' or '.join(repr(h) for h in hints)}?)" if hints else ""
    raise SpecError(f"unknown model {name!r}{hint}; `shapecalc models` lists them")


# Importing the modules registers their models.
from shapecalc.models.zoo import d2l  # noqa: E402,F401
from shapecalc.models.zoo import classic  # noqa: E402,F401

__all__ = ["ZOO", "ZooEntry", "get_entry", "register"]
