"""Architecture specs as a tree: Sequential chains, residual additions and concatenated branches.

The tree is how people write networks (and how torch nests modules); the analysis works on the
flat DAG that :meth:`Block.to_graph` compiles it to. Node names are the torch module paths the
same tree builds (``"3.1.body.conv2"``), so a forward hook on the real module finds its row.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Iterable, Iterator, Union

from shapecalc.core.errors import SpecError
from shapecalc.core.graph import Graph, GraphBuilder
from shapecalc.core.layers import Add, Concat, Layer

Child = Union["Block", Layer]

#: Most layers and blocks one model may expand to (spec ``repeat``\s, blocks shared many times).
DEFAULT_MAX_NODES = 200_000
#: The budget used where a caller passes none: the CLI's ``--max-nodes`` sets it for one run.
MAX_NODES: ContextVar[int] = ContextVar("shapecalc_max_nodes", default=DEFAULT_MAX_NODES)
#: Deepest nesting of blocks: analysis recurses once per level, and real networks nest < 10.
MAX_DEPTH = 100


def _named(children: tuple, named: dict) -> list[tuple[str, Child]]:
    if children and named:
        raise SpecError("give a block's children either by position or by name, not both")
    items = list(named.items()) if named else [(str(i), c) for i, c in enumerate(children)]
    if len(items) == 1 and isinstance(items[0][1], dict):  # Sequential({"conv": ..., ...})
        items = list(items[0][1].items())
    for name, child in items:
        if not isinstance(child, (Block, Layer)):
            raise SpecError(f"child {name!r} is a {type(child).__name__}, not a layer or block")
        if "." in name or not name:
            raise SpecError(f"child name {name!r} must be non-empty and contain no '.'")
    return items


class Block:
    """A named group of layers; subclasses say how their children are wired."""

    label: str = "Block"

    def children(self) -> list[tuple[str, Child]]:
        raise NotImplementedError

    def emit(self, builder: GraphBuilder, path: str, source: str) -> str:
        """Add this block's nodes under ``path``, fed by node ``source``; return its output node."""
        raise NotImplementedError

    def to_graph(self, name: str = "model", *, max_nodes: int | None = None) -> Graph:
        check_size(self, max_nodes)
        builder = GraphBuilder(name)
        out = self.emit(builder, "", builder.input_name)
        return builder.finish(out)

    def walk(self, path: str = "") -> Iterator[tuple[str, Child]]:
        """Every descendant with its dotted path, parents before children."""
        for name, child in self.children():
            sub = f"{path}.{name}" if path else name
            yield sub, child
            if isinstance(child, Block):
                yield from child.walk(sub)


def check_size(block: "Block", max_nodes: int | None = None) -> int:
    """The number of layers and blocks ``block`` expands to, refused past ``max_nodes`` or
    :data:`MAX_DEPTH` levels (one line naming the limit instead of a ``RecursionError``, or
    an endless expansion of a block that appears in itself many times over).

    Iterative, and memoised per object, so a block shared a million times is counted once (a
    block that contains itself ends at the depth limit).
    """
    if max_nodes is None:
        max_nodes = MAX_NODES.get()
    sizes: dict[int, int] = {}
    stack: list[tuple[Child, int, bool]] = [(block, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if id(node) in sizes and not done:
            continue
        if not isinstance(node, Block):
            sizes[id(node)] = 1
            continue
        if depth > MAX_DEPTH:
            raise SpecError(f"blocks nested deeper than {MAX_DEPTH} levels, the nesting limit")
        children = [c for _, c in node.children()]
        if done:
            total = 1 + sum(sizes[id(c)] for c in children)
            if total > max_nodes:
                raise SpecError(f"the model expands to more than {max_nodes:,} layers and blocks, the "
                                "node budget (raise it with max_nodes=, on the command line --max-nodes)")
            sizes[id(node)] = total
            continue
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in children if id(c) not in sizes)
    return sizes[id(block)]


def _emit_child(builder: GraphBuilder, path: str, child: Child, source: str) -> str:
    if isinstance(child, Block):
        builder.open_block(path, child.label, source)
        out = child.emit(builder, path, source)
        builder.close_block(path, out)
        return out
    return builder.add(path, child, (source,), module=path)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class Sequential(Block):
    """Children applied in order, as ``nn.Sequential`` (named with an ``OrderedDict`` or by index)."""

    def __init__(self, *children: Child | dict, label: str = "Sequential", **named: Child) -> None:
        self._items = _named(children, named)
        self.label = label

    def children(self) -> list[tuple[str, Child]]:
        return list(self._items)

    def emit(self, builder: GraphBuilder, path: str, source: str) -> str:
        for name, child in self._items:
            source = _emit_child(builder, _join(path, name), child, source)
        return source

    def __repr__(self) -> str:
        return f"Sequential({', '.join(n for n, _ in self._items)})"


class Residual(Block):
    """``post(body(x) + shortcut(x))``: the ResNet block. ``shortcut=None`` is the identity."""

    def __init__(
        self,
        body: Child,
        shortcut: Child | None = None,
        post: Layer | None = None,
        label: str = "Residual",
    ) -> None:
        self.body = body
        self.shortcut = shortcut
        self.post = post
        self.label = label

    def children(self) -> list[tuple[str, Child]]:
        items: list[tuple[str, Child]] = [("body", self.body)]
        if self.shortcut is not None:
            items.append(("shortcut", self.shortcut))
        if self.post is not None:
            items.append(("post", self.post))
        return items

    def emit(self, builder: GraphBuilder, path: str, source: str) -> str:
        main = _emit_child(builder, _join(path, "body"), self.body, source)
        side = source
        if self.shortcut is not None:
            side = _emit_child(builder, _join(path, "shortcut"), self.shortcut, source)
        out = builder.add(_join(path, "add"), Add(), (main, side), module=None)
        if self.post is not None:
            out = builder.add(_join(path, "post"), self.post, (out,), module=_join(path, "post"))
        return out


class Branches(Block):
    """Parallel branches on one input, concatenated along ``dim`` (Inception; DenseNet layers).

    An empty ``Sequential()`` branch passes the input through unchanged, which is how a dense
    connection (``cat([x, f(x)])``) is written.
    """

    def __init__(self, *branches: Child | dict, dim: int = 1, label: str = "Branches", **named: Child) -> None:
        self._items = _named(branches, named)
        if len(self._items) < 2:
            raise SpecError("Branches needs at least two branches")
        self.dim = dim
        self.label = label

    def children(self) -> list[tuple[str, Child]]:
        return list(self._items)

    def emit(self, builder: GraphBuilder, path: str, source: str) -> str:
        outs = [_emit_child(builder, _join(path, name), child, source) for name, child in self._items]
        return builder.add(_join(path, "cat"), Concat(self.dim), tuple(outs), module=None)


def repeat(block_factory, count: int) -> Iterable[Child]:
    """``count`` fresh children from a factory (VGG stages, DenseNet layers)."""
    return [block_factory(i) for i in range(count)]
