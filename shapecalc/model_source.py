"""The loaded-model value: what every way of naming a model (zoo name, spec file, Python target,
``nn.Module``) resolves to, before any input shape is chosen.

It lives low in the package (it imports only the graph and block types) so that the resolver
(``sources``), the torch bridge and the API can all return or accept it without importing
each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .blocks import Block
from .graph import Graph
from .layers import Shape


@dataclass
class ModelSource:
    """A model ready for analysis: its graph, the spec tree (when it has one) and its default input."""

    name: str
    graph: Graph
    default_input: Shape | None
    spec: Block | None = None
    description: str = ""
    source: str = ""
    #: Builds the graph for one input shape, for models whose graph depends on it (an untraceable
    #: nn.Module recorded by hooks); ``analyze`` prefers it over ``graph`` when set.
    graph_for: Callable[[Shape], Graph] | None = None
    #: The nn.Module this model came from (``torch_bridge.fx_import.TorchImport``), for --verify.
    torch_import: Any = None


__all__ = ["ModelSource"]
