"""Graphviz drawings of an analysis: layers as nodes, tensor shapes on the edges, blocks as boxes.

DOT text is generated here as plain text, so ``--format dot`` needs nothing installed; SVG,
PNG and PDF are rendered by Graphviz's ``dot`` program. Readability at ResNet-50 size is a
design goal (torchview's big PNGs are shrunk until the text is unreadable): the font size is
fixed, no ``size=`` ever scales the drawing down, and a model too big to draw layer by layer
is collapsed to the deepest block level that stays small, unless ``expand`` asks for all.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import ShapecalcError, UsageError
from . import human_count, shape_text

#: Suffix → format. ``dot``/``gv`` are text; the rest are rendered by Graphviz.
FORMATS = {"dot": "dot", "gv": "dot", "svg": "svg", "png": "png", "pdf": "pdf"}
RANKDIRS = ("TB", "LR")
#: Without ``depth``/``expand``, collapse blocks until at most this many nodes are drawn.
AUTO_NODE_LIMIT = 80
#: PNG resolution: large enough for 10–11 pt text to read on screen, small enough that a
#: ResNet-50 drawing stays under cairo's 32767-pixel limit (past it Graphviz shrinks it all).
PNG_DPI = 110

FONT = "Helvetica"
#: Fill colours by ``Layer.kind``; the legend lists them in this order.
KIND_COLOURS = {
    "conv": ("#cfe2ff", "convolution"),
    "pool": ("#e2d9f3", "pooling"),
    "norm": ("#fff3cd", "normalisation"),
    "activation": ("#d1e7dd", "activation"),
    "linear": ("#f8d7da", "linear"),
    "reshape": ("#e9ecef", "reshape / flatten"),
    "dropout": ("#f8f9fa", "dropout"),
    "merge": ("#ffffff", "add / concat"),
    "other": ("#f8f9fa", "other"),
}
BLOCK_COLOUR = ("#dee2e6", "collapsed block")


class GraphvizNotFound(ShapecalcError):
    """Rendering SVG/PNG/PDF needs Graphviz's ``dot`` program, which is not installed."""


def _id(text: str) -> str:
    """A DOT double-quoted string: only ``"`` and ``\\`` need escaping."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _h(text: object) -> str:
    """Text inside an HTML-like label: ``<``, ``>``, ``&`` and quotes escaped."""
    return html.escape(str(text), quote=True)


def _count(n: int) -> str:
    return f"{n:,}"


# ---------------------------------------------------------------- what is drawn
def _visible_count(analysis, depth: int) -> int:
    blocks = analysis.blocks
    members = _block_members(analysis)
    return (sum(1 for r in analysis.records if r.depth <= depth)
            + sum(1 for p, b in blocks.items() if b.depth == depth and members.get(p)))


def _block_members(analysis) -> dict[str, int]:
    """How many layer nodes each block holds (empty identity blocks hold none)."""
    counts: dict[str, int] = {}
    for rec in analysis.records:
        parts = rec.name.split(".")
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix in analysis.blocks:
                counts[prefix] = counts.get(prefix, 0) + 1
    return counts


def auto_depth(analysis, limit: int = AUTO_NODE_LIMIT) -> int | None:
    """The deepest block level whose drawing has at most ``limit`` nodes (``None``: draw all)."""
    if not analysis.blocks or len(analysis.records) <= limit:
        return None
    deepest = max(b.depth for b in analysis.blocks.values())
    for depth in range(deepest, -1, -1):
        if _visible_count(analysis, depth) <= limit:
            return depth
    return 0


def _representative(name: str, blocks: dict, depth: int | None) -> str:
    """The drawn node standing for ``name``: itself, or the collapsed block that holds it."""
    if depth is None:
        return name
    parts = name.split(".")
    for i in range(1, len(parts)):
        prefix = ".".join(parts[:i])
        block = blocks.get(prefix)
        if block is not None and block.depth >= depth:
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
        f"  ·  {_h(human_count(rec.macs))} MACs</FONT></TD></TR>",
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


# ---------------------------------------------------------------- the DOT text
def analysis_to_dot(analysis, rankdir: str = "TB", depth: int | None = None, expand: bool = False) -> str:
    """DOT source for ``analysis``: one node per layer (or collapsed block), shapes on edges.

    ``depth`` N draws blocks nested deeper than N as single nodes (0: top-level only);
    ``expand`` draws every layer whatever the size; with neither, big models are collapsed to
    the deepest level that keeps at most :data:`AUTO_NODE_LIMIT` nodes.
    """
    if rankdir not in RANKDIRS:
        raise UsageError(f"--rankdir: expected one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    if depth is not None and depth < 0:
        raise UsageError(f"--depth: must be ≥ 0, got {depth}")
    if expand:
        depth = None
    elif depth is None:
        depth = auto_depth(analysis)
    blocks = analysis.blocks
    members = _block_members(analysis)
    input_name = analysis.graph.input_name if analysis.graph is not None else "input"

    ids: dict[str, str] = {input_name: "input"}
    nodes: list[tuple[str, str]] = []  # (drawn name, DOT statement) in execution order
    kinds: set[str] = set()
    collapsed: set[str] = set()
    for rec in analysis.records:
        rep = _representative(rec.name, blocks, depth)
        if rep in ids:
            continue
        ids[rep] = f"n{len(ids)}"
        if rep != rec.name:
            collapsed.add(rep)
            brec = blocks[rep]
            attrs = (f"label={_block_label(rep, brec, members.get(rep, 0))}, fillcolor=\"{BLOCK_COLOUR[0]}\", "
                     f"style=\"rounded,filled,bold\", tooltip={_id(rep)}")
        else:
            kind = rec.layer.kind if rec.layer is not None else "other"
            kinds.add(kind)
            colour = KIND_COLOURS.get(kind, KIND_COLOURS["other"])[0]
            style = "rounded,filled,bold" if kind == "merge" else "rounded,filled"
            attrs = (f"label={_layer_label(rec)}, fillcolor=\"{colour}\", style=\"{style}\", "
                     f"tooltip={_id(rec.name)}")
        nodes.append((rep, f"{ids[rep]} [{attrs}];"))

    title = (f"{analysis.model}  ·  input {shape_text(analysis.input_shape)}  ·  "
             f"{_count(analysis.total_params)} params  ·  {human_count(analysis.total_macs)} MACs")
    lines = [
        f"digraph {_id(analysis.model)} {{",
        f"  graph [rankdir={rankdir}, fontname=\"{FONT}\", fontsize=14, label={_id(title)}, labelloc=t, "
        "nodesep=0.3, ranksep=0.4, newrank=true, bgcolor=white, compound=true];",
        f"  node [shape=box, fontname=\"{FONT}\", fontsize=11, margin=\"0.12,0.06\", color=\"#495057\"];",
        f"  edge [fontname=\"{FONT}\", fontsize=10, color=\"#495057\", fontcolor=\"#343a40\"];",
        f"  input [label={_id('input ' + shape_text(analysis.input_shape))}, shape=oval, style=filled, "
        "fillcolor=\"#ffffff\"];",
    ]
    # A forward with several tensor arguments: one oval per further input.
    extra = analysis.graph.extra_inputs if analysis.graph is not None else ()
    for i, (name, shape) in enumerate(zip(extra, analysis.input_shapes[1:]), start=1):
        ids[name] = f"input{i}"
        lines.append(f"  input{i} [label={_id(name + ' ' + shape_text(shape))}, shape=oval, "
                     "style=filled, fillcolor=\"#ffffff\"];")
    lines += _clusters(nodes, blocks, depth, collapsed)

    # Edges: one per (producer, consumer) pair of drawn nodes, labelled with the tensor shape.
    shapes = {r.name: r.output_shape for r in analysis.records}
    shapes[input_name] = analysis.input_shape
    shapes.update(zip(extra, analysis.input_shapes[1:]))
    graph_nodes = analysis.graph.nodes if analysis.graph is not None else []
    seen: set[tuple[str, str]] = set()
    for node in graph_nodes:
        dst = _representative(node.name, blocks, depth)
        for src_name in node.inputs:
            src = src_name if src_name == input_name or src_name in extra else \
                _representative(src_name, blocks, depth)
            if src == dst or (src, dst) in seen:
                continue
            seen.add((src, dst))
            lines.append(f"  {ids[src]} -> {ids[dst]} [label={_id(' ' + shape_text(shapes[src_name]) + ' ')}];")
    output = analysis.graph.output if analysis.graph is not None else analysis.records[-1].name
    lines.append(f"  output [label={_id('output ' + shape_text(analysis.output_shape))}, shape=oval];")
    lines.append(f"  {ids[_representative(output, blocks, depth)]} -> output;")
    lines.append(f"  legend [shape=plaintext, margin=0, label={_legend(kinds, bool(collapsed))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _clusters(nodes: list[tuple[str, str]], blocks: dict, depth: int | None,
              collapsed: set[str]) -> list[str]:
    """Node statements nested in one ``subgraph cluster_…`` per drawn (not collapsed) block."""
    tree: dict[str, list] = {"": []}  # cluster path → ordered children (("node", stmt) | ("cluster", path))
    for name, stmt in nodes:
        parents = [p for p in _prefixes(name) if p in blocks and p not in collapsed
                   and (depth is None or blocks[p].depth < depth)]
        parent = ""
        for p in parents:
            if p not in tree:
                tree[p] = []
                tree[parent].append(("cluster", p))
            parent = p
        tree[parent].append(("node", stmt))
    out: list[str] = []

    def emit(path: str, indent: str) -> None:
        for kind, item in tree[path]:
            if kind == "node":
                out.append(indent + item)
                continue
            block = blocks[item]
            out.append(f"{indent}subgraph {_id('cluster_' + item)} {{")
            out.append(f"{indent}  label={_id(item + '  ·  ' + block.type)}; labeljust=l; fontsize=11; "
                       "style=\"rounded,dashed\"; color=\"#868e96\";")
            emit(item, indent + "  ")
            out.append(f"{indent}}}")

    emit("", "  ")
    return out


def _prefixes(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


# ---------------------------------------------------------------- files
def _format_of(path: Path, fmt: str | None) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if fmt is None:
        if suffix not in FORMATS:
            raise UsageError(
                f"-o: cannot tell the format from {path.name!r}; use a .dot, .gv, .svg, .png or .pdf "
                "suffix or give --format"
            )
        return FORMATS[suffix]
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise UsageError(f"--format: expected one of dot, svg, png, pdf, got {fmt!r}")
    if suffix in FORMATS and FORMATS[suffix] != FORMATS[fmt]:
        raise UsageError(f"--format {fmt} does not match the file name {path.name!r}; change one of them")
    return FORMATS[fmt]


def render(dot_text: str, fmt: str, target: Path) -> None:
    """Run Graphviz's ``dot`` to write ``fmt`` to ``target`` (raises :class:`GraphvizNotFound`)."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizNotFound(
            f"writing {fmt.upper()} needs Graphviz's `dot` program, which is not on PATH: install it "
            "with `apt-get install graphviz` (Debian/Ubuntu) or `brew install graphviz` (macOS), "
            "or use --format dot, which needs no Graphviz"
        )
    args = [exe, f"-T{fmt}", "-o", str(target)]
    if fmt == "png":
        args.insert(2, f"-Gdpi={PNG_DPI}")
    proc = subprocess.run(args, input=dot_text.encode("utf-8"), capture_output=True, timeout=300)
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ShapecalcError(f"Graphviz `dot` failed: {message[0] if message else 'exit ' + str(proc.returncode)}")


def write_graph(analysis, path, fmt: str | None = None, rankdir: str = "TB", depth: int | None = None,
                expand: bool = False) -> Path:
    """Write the drawing to ``path`` (format from ``fmt`` or the suffix) and return the path.

    The file appears complete or not at all: it is written to a temporary file in the same
    directory and renamed over ``path`` only once Graphviz has succeeded.
    """
    path = Path(path)
    kind = _format_of(path, fmt)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"-o: directory {str(parent)!r} does not exist")
    if path.is_dir():
        raise UsageError(f"-o: {str(path)!r} is a directory; give a file name")
    text = analysis_to_dot(analysis, rankdir=rankdir, depth=depth, expand=expand)
    if kind != "dot" and shutil.which("dot") is None:
        render(text, kind, path)  # raises the one-line install hint before any file is touched
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    tmp = Path(tmp_name)
    try:
        if kind == "dot":
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        else:
            os.close(fd)
            render(text, kind, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is for the temporary, not the result
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


__all__ = ["AUTO_NODE_LIMIT", "FORMATS", "GraphvizNotFound", "analysis_to_dot", "auto_depth", "render",
           "write_graph"]
