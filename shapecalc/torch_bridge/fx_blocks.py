"""Module containers of a traced model become blocks, so the table can fold a ResNet stage into a row.

Built in one pass over the nodes (each credited to every module path above it), so that a
model of N blocks costs O(N × depth), not O(N²): deep models trace in time linear in depth.
"""

from __future__ import annotations

from typing import Any

from ..graph import BlockInfo


def module_blocks(graph_nodes: list, root: Any, output: str) -> dict[str, BlockInfo]:
    """``{module path: BlockInfo}`` for every module path that encloses at least one node."""
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
