"""The Graphviz drawing of an analysis: layers as nodes, tensor shapes on the edges, blocks as
boxes; what is drawn (collapsing big models), the labels, the legend and the DOT text.

The drawing is built with the ``graphviz`` package (its quoting); every name is made printable
and escaped (:func:`printable`, HTML escaping inside labels, ``graphviz.escape`` elsewhere), so
``dot`` accepts any layer name. Readability at ResNet-50 size is a design goal (torchview's big
PNGs are shrunk until the text is unreadable): the font size is fixed, no ``size=`` ever scales
the drawing down, and a model too big to draw layer by layer is collapsed to the deepest block
level that stays small, unless ``expand`` asks for all. ``graphviz`` is imported inside the
functions: discovering the output formats must not cost its import.
"""

from __future__ import annotations

from shapecalc.core.errors import ArgumentError
from shapecalc.core.layers.base import LayerKind
from shapecalc.output import (
    input_parts, macs_cell, record_kind, several_inputs, shape_text, total_macs_text, visible_text,
)
from shapecalc.output.palette import BLOCK, PALETTE
from shapecalc.core.safetext import preview

RANKDIRS = ("TB", "LR")
#: Without ``depth``/``expand``, collapse blocks until at most this many nodes are drawn.
AUTO_NODE_LIMIT = 80
#: PNG resolution: large enough for 10–11 pt text to read on screen, small enough that a
#: ResNet-50 drawing stays under cairo's 32767-pixel limit (past it Graphviz shrinks it all).
PNG_DPI = 110
#: Longest text put in one label: Graphviz's scanner refuses quoted strings over 16 KiB.
MAX_TEXT = 1000

FONT = "Helvetica"
#: Fill colours by ``Layer.kind`` (the palette's pale shades); the legend lists them in this order.
KIND_COLOURS = {kind: (colour.fill, colour.label) for kind, colour in PALETTE.items()}
BLOCK_COLOUR = (BLOCK.fill, BLOCK.label)


def printable(text: object) -> str:
    """``text`` with every character Graphviz would refuse or hide (its XML parser refuses C0
    controls, lone surrogates and U+FFFE/U+FFFF; line breaks would break the one-line labels)
    replaced by a visible stand-in (``\n`` → ``␊``, :func:`.visible_text`), cut to
    :data:`MAX_TEXT` characters."""
    out = visible_text(text)
    return out if len(out) <= MAX_TEXT else out[:MAX_TEXT - 1] + "…"


def _plain(text: object) -> str:
    """A plain DOT string: printable, and backslashes literal (``\\N`` is not the node name);
    the graphviz package quotes it and escapes its quotes."""
    import graphviz

    return graphviz.escape(printable(text))


def _h(text: object) -> str:
    """Text inside an HTML-like label: printable, ``<``, ``>``, ``&`` and quotes escaped, and
    backslashes doubled: Graphviz expands ``\\N``, ``\\G``, ``\\l`` even in HTML labels."""
    import html  # here, not at the top: discovering the formats must stay cheap

    return html.escape(printable(text).replace("\\", "\\\\"), quote=True)


def _count(n: int) -> str:
    return f"{n:,}"


# ---------------------------------------------------------------- what is drawn
def _visible_count(analysis, depth: int) -> int:
    blocks = analysis.blocks
    members = analysis.graph.members() if analysis.graph is not None else {}
    return (sum(1 for r in analysis.records if r.depth <= depth)
            + sum(1 for p, b in blocks.items() if b.depth == depth and members.get(p)))


def auto_depth(analysis, limit: int = AUTO_NODE_LIMIT) -> int | None:
    """The deepest block level whose drawing has at most ``limit`` nodes (``None``: draw all)."""
    if not analysis.blocks or len(analysis.records) <= limit:
        return None
    deepest = max(b.depth for b in analysis.blocks.values())
    for depth in range(deepest, -1, -1):
        if _visible_count(analysis, depth) <= limit:
            return depth
    return 0


def _representative(name: str, analysis, depth: int | None) -> str:
    """The drawn node standing for ``name``: itself, or the collapsed block that holds it."""
    if depth is None:
        return name
    for prefix in analysis.blocks_of(name):
        if analysis.blocks[prefix].depth >= depth:
            return prefix
    return name


# ---------------------------------------------------------------- labels
def _layer_label(rec) -> str:
    rows = [f'<TR><TD ALIGN="LEFT"><B>{_h(rec.name)}</B></TD></TR>',
            f'<TR><TD ALIGN="LEFT">{_h(rec.description)}</TD></TR>']
    detail = shape_text(rec.output_shape)
    if rec.params:
        detail += f"  ·  {_count(rec.params)} params"
        if rec.shared:
            detail += " (shared)"
    rows.append(f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="10">{_h(detail)}</FONT></TD></TR>')
    return '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>>"


def _block_label(path: str, rec, layers: int) -> str:
    rows = [
        f'<TR><TD ALIGN="LEFT"><B>{_h(path)}</B>  {_h(rec.type)}</TD></TR>',
        f'<TR><TD ALIGN="LEFT">{_h(shape_text(rec.input_shape))} → {_h(shape_text(rec.output_shape))}</TD></TR>',
        f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="10">{layers} layers  ·  {_count(rec.params)} params'
        f"  ·  {_h(macs_cell(rec.macs, human=True))} MACs</FONT></TD></TR>",
    ]
    return '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>>"


def _legend(kinds: set[str], has_blocks: bool) -> str:
    rows = ['<TR><TD COLSPAN="2"><B>Legend</B></TD></TR>']
    for kind, (colour, text) in KIND_COLOURS.items():
        if kind in kinds:
            rows.append(f'<TR><TD BGCOLOR="{colour}" BORDER="1" WIDTH="18"></TD>'
                        f'<TD ALIGN="LEFT">{_h(text)}</TD></TR>')
    if has_blocks:
        rows.append(f'<TR><TD BGCOLOR="{BLOCK_COLOUR[0]}" BORDER="1" WIDTH="18"></TD>'
                    f'<TD ALIGN="LEFT">{_h(BLOCK_COLOUR[1])}</TD></TR>')
    rows.append('<TR><TD COLSPAN="2" ALIGN="LEFT"><FONT POINT-SIZE="10">edges: tensor shape'
                '</FONT></TD></TR>')
    return ('<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="2" CELLPADDING="2" COLOR="#adb5bd">'
            + "".join(rows) + "</TABLE>>")


# ---------------------------------------------------------------- the drawing
def build_graph(analysis, rankdir: str = "TB", depth: int | None = None, expand: bool = False):
    """The ``graphviz.Digraph`` of ``analysis``: one node per layer (or collapsed block), shapes
    on edges, blocks as clusters. Returns ``(digraph, ids)``, ``ids`` mapping each drawn DOT node
    id (``n1``…; also its SVG element id) to the layer or block path it stands for.

    ``depth`` N draws blocks nested deeper than N as single nodes (0: top-level only);
    ``expand`` draws every layer whatever the size; with neither, big models are collapsed to
    the deepest level that keeps at most :data:`AUTO_NODE_LIMIT` nodes.
    """
    import graphviz

    if rankdir not in RANKDIRS:
        raise ArgumentError("rankdir", f"expected one of {', '.join(RANKDIRS)}, got {preview(rankdir)}")
    if depth is not None and depth < 0:
        raise ArgumentError("depth", f"must be ≥ 0, got {depth}")
    if expand:
        depth = None
    elif depth is None:
        depth = auto_depth(analysis)
    blocks = analysis.blocks
    members = analysis.graph.members() if analysis.graph is not None else {}
    input_name = analysis.graph.input_name if analysis.graph is not None else "input"

    ids: dict[str, str] = {input_name: "input"}
    nodes: list[tuple[str, str, dict[str, str]]] = []  # (drawn name, id, attributes), in order
    kinds: set[str] = set()
    collapsed: set[str] = set()
    for rec in analysis.records:
        rep = _representative(rec.name, analysis, depth)
        if rep in ids:
            continue
        ids[rep] = node_id = f"n{len(ids)}"
        if rep != rec.name:
            collapsed.add(rep)
            attrs = {"label": _block_label(rep, blocks[rep], len(members.get(rep, ()))),
                     "fillcolor": BLOCK_COLOUR[0], "style": "rounded,filled,bold"}
        else:
            kind = record_kind(rec)
            kinds.add(kind)
            attrs = {"label": _layer_label(rec),
                     "fillcolor": KIND_COLOURS.get(kind, KIND_COLOURS[LayerKind.OTHER])[0],
                     "style": "rounded,filled,bold" if kind is LayerKind.MERGE else "rounded,filled"}
        attrs.update(id=node_id, tooltip=_plain(rep))
        nodes.append((rep, node_id, attrs))

    named = input_parts(analysis) if several_inputs(analysis) else []
    inputs = ("inputs " + ", ".join(named)) if named else f"input {shape_text(analysis.input_shape)}"
    title = (f"{analysis.model}  ·  {inputs}  ·  "
             f"{_count(analysis.total_params)} params  ·  {total_macs_text(analysis, human=False)} MACs")
    g = graphviz.Digraph(
        name=_plain(analysis.model),
        graph_attr={"rankdir": rankdir, "fontname": FONT, "fontsize": "14", "label": _plain(title),
                    "labelloc": "t", "nodesep": "0.3", "ranksep": "0.4", "newrank": "true",
                    "bgcolor": "white", "compound": "true"},
        node_attr={"shape": "box", "fontname": FONT, "fontsize": "11", "margin": "0.12,0.06",
                   "color": "#495057"},
        edge_attr={"fontname": FONT, "fontsize": "10", "color": "#495057", "fontcolor": "#343a40"},
    )
    g.node("input", label=_plain(named[0] if named else "input " + shape_text(analysis.input_shape)),
           shape="oval", style="filled", fillcolor="#ffffff", id="input")
    _add_clusters(g, nodes, analysis, depth, collapsed)
    # A forward with several tensor arguments: one oval per further input, named as in forward.
    extra = analysis.graph.extra_inputs if analysis.graph is not None else ()
    for k, name in enumerate(extra, start=1):
        ids[name] = f"input{k}"
        g.node(f"input{k}", label=_plain(named[k] if k < len(named) else name), shape="oval",
               style="filled", fillcolor="#ffffff", id=f"input{k}")

    # Edges: one per (producer, consumer) pair of drawn nodes, labelled with the tensor shape.
    shapes = {r.name: r.output_shape for r in analysis.records}
    shapes[input_name] = analysis.input_shape
    shapes.update(zip(extra, analysis.input_shapes[1:]))
    seen: set[tuple[str, str]] = set()
    for node in (analysis.graph.nodes if analysis.graph is not None else []):
        dst = _representative(node.name, analysis, depth)
        for src_name in node.inputs:
            src = src_name if src_name == input_name or src_name in extra else \
                _representative(src_name, analysis, depth)
            if src == dst or (src, dst) in seen:
                continue
            seen.add((src, dst))
            g.edge(ids[src], ids[dst], label=_plain(" " + shape_text(shapes[src_name]) + " "))
    output = analysis.graph.output if analysis.graph is not None else analysis.records[-1].name
    g.node("output", label=_plain("output " + shape_text(analysis.output_shape)), shape="oval",
           id="output")
    g.edge(ids[_representative(output, analysis, depth)], "output")
    g.node("legend", label=_legend(kinds, bool(collapsed)), shape="plaintext", margin="0")
    return g, {node_id: name for name, node_id in ids.items()}


def _add_clusters(g, nodes: list[tuple[str, str, dict[str, str]]], analysis,
                  depth: int | None, collapsed: set[str]) -> None:
    """Add the nodes to ``g``, nested in one ``cluster_…`` subgraph per drawn (not collapsed)
    block, in execution order."""
    blocks = analysis.blocks
    tree: dict[str, list] = {"": []}  # cluster path → ordered children (("node", …) | ("cluster", path))
    for name, node_id, attrs in nodes:
        parents = [p for p in analysis.blocks_of(name) if p not in collapsed
                   and (depth is None or blocks[p].depth < depth)]
        parent = ""
        for p in parents:
            if p not in tree:
                tree[p] = []
                tree[parent].append(("cluster", p))
            parent = p
        tree[parent].append(("node", (node_id, attrs)))

    def emit(graph, path: str) -> None:
        for kind, item in tree[path]:
            if kind == "node":
                node_id, attrs = item
                graph.node(node_id, **attrs)
                continue
            with graph.subgraph(name=_plain("cluster_" + item)) as sub:
                sub.attr(label=_plain(item + "  ·  " + blocks[item].type), labeljust="l",
                         fontsize="11", style="rounded,dashed", color="#868e96")
                emit(sub, item)

    emit(g, "")


def analysis_to_dot(analysis, rankdir: str = "TB", depth: int | None = None, expand: bool = False) -> str:
    """DOT source for ``analysis`` (see :func:`build_graph` for the options)."""
    return build_graph(analysis, rankdir, depth, expand)[0].source


__all__ = ["AUTO_NODE_LIMIT", "BLOCK_COLOUR", "FONT", "KIND_COLOURS", "MAX_TEXT", "PNG_DPI",
           "RANKDIRS", "analysis_to_dot", "auto_depth", "build_graph", "printable"]
