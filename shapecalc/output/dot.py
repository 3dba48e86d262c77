"""Graphviz drawings of an analysis as output formats: ``--format dot`` is the ``graphviz``
package's DOT text and needs nothing installed; SVG, PNG and PDF are rendered by Graphviz's
``dot`` program; in Jupyter a :class:`Drawing` shows itself as SVG.

This module holds the formats (``dot``, ``svg``, ``png``, ``pdf``, the notebook's drawing) and
re-exports the two parts they join: :mod:`.graph_build` (what is drawn) and :mod:`.dot_runner`
(running ``dot``, bounded in time).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shapecalc.output.registry import renderer, write
from shapecalc.output.dot_runner import (
    DOT_TIMEOUT, NO_DOT, GraphvizFailed, GraphvizNotFound, GraphvizTimeout, check_timeout, pipe,
)
from shapecalc.output.graph_build import (
    AUTO_NODE_LIMIT, BLOCK_COLOUR, KIND_COLOURS, PNG_DPI, RANKDIRS, analysis_to_dot, auto_depth,
    build_graph, printable,
)

#: Suffix → format: the graph command's formats, as the registry declares them.
FORMATS = {"dot": "dot", "gv": "dot", "svg": "svg", "png": "png", "pdf": "pdf"}


def _rendered(analysis, fmt: str, rankdir: str, depth: int | None, expand: bool,
              dot_timeout: float) -> bytes:
    check_timeout(dot_timeout)  # before the (possibly long) drawing is built
    g = build_graph(analysis, rankdir, depth, expand)[0]
    if fmt == "png":
        g.graph_attr["dpi"] = str(PNG_DPI)
    return pipe(g, fmt, dot_timeout)


# ---------------------------------------------------------------- the formats
@renderer("dot", summary="Graphviz DOT text (needs nothing installed)", suffixes=("dot", "gv"),
          commands=("graph",))
def to_dot(analysis, rankdir: str = "TB", depth: int | None = None, expand: bool = False) -> str:
    """DOT source (see :func:`build_graph`)."""
    return analysis_to_dot(analysis, rankdir, depth, expand)


@renderer("svg", summary="SVG drawn by Graphviz", suffixes=("svg",), commands=("graph",))
def to_svg(analysis, rankdir: str = "TB", depth: int | None = None, expand: bool = False,
           dot_timeout: float = DOT_TIMEOUT) -> str:
    """SVG text rendered by Graphviz's ``dot``."""
    return _rendered(analysis, "svg", rankdir, depth, expand, dot_timeout).decode("utf-8")


@renderer("png", summary="PNG drawn by Graphviz", suffixes=("png",), binary=True, commands=("graph",))
def to_png(analysis, rankdir: str = "TB", depth: int | None = None, expand: bool = False,
           dot_timeout: float = DOT_TIMEOUT) -> bytes:
    """PNG at :data:`PNG_DPI`, never scaled down."""
    return _rendered(analysis, "png", rankdir, depth, expand, dot_timeout)


@renderer("pdf", summary="PDF drawn by Graphviz", suffixes=("pdf",), binary=True, commands=("graph",))
def to_pdf(analysis, rankdir: str = "TB", depth: int | None = None, expand: bool = False,
           dot_timeout: float = DOT_TIMEOUT) -> bytes:
    """PDF rendered by Graphviz's ``dot``."""
    return _rendered(analysis, "pdf", rankdir, depth, expand, dot_timeout)


class Drawing:
    """A drawing that shows itself as SVG in Jupyter and can be saved to a file, atomically,
    in any of the graph formats; ``dot`` runs at most ``dot_timeout`` seconds each time."""

    def __init__(self, analysis, rankdir: str, depth: int | None, expand: bool,
                 dot_timeout: float = DOT_TIMEOUT) -> None:
        self.analysis = analysis
        self.options = {"rankdir": rankdir, "depth": depth, "expand": expand,
                        "dot_timeout": check_timeout(dot_timeout)}
        self.digraph, self.ids = build_graph(analysis, rankdir, depth, expand)

    @property
    def source(self) -> str:
        """The DOT text."""
        return self.digraph.source

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs: Any) -> dict[str, Any]:
        """SVG for Jupyter; without ``dot``, or when it fails or runs out of time, a line of
        text saying so instead of a traceback under the cell."""
        mime = "image/svg+xml"
        if (include and mime not in include) or (exclude and mime in exclude):
            return {}
        try:
            return {mime: self.svg()}
        except GraphvizNotFound:
            return {"text/plain": f"{self!r}: drawing it needs {NO_DOT}"}
        except GraphvizFailed as err:
            return {"text/plain": f"{self!r}: {err}"}

    def svg(self) -> str:
        """The drawing as SVG text (needs Graphviz's ``dot``)."""
        return pipe(self.digraph, "svg", self.options["dot_timeout"]).decode("utf-8")

    def save(self, path: str | Path, format: str | None = None) -> Path:
        """Write the drawing to ``path``; the format comes from ``format`` or the suffix
        (``.dot``/``.gv``, ``.svg``, ``.png``, ``.pdf``)."""
        from shapecalc.output.registry import for_output

        fmt = for_output(str(path), format, "graph")
        return Path(write(self.analysis, fmt, str(path), **self.options))

    def __repr__(self) -> str:
        return f"<Drawing of {self.analysis.model}: {len(self.ids) - 1} nodes; .save(path), .source>"


@renderer("drawing", summary="a graphviz drawing object: SVG in Jupyter, .save(path) (library only)")
def to_drawing(analysis, rankdir: str = "TB", depth: int | None = None, expand: bool = False,
               dot_timeout: float = DOT_TIMEOUT) -> Drawing:
    """A :class:`Drawing` of ``analysis`` (``Analysis.draw()``)."""
    return Drawing(analysis, rankdir, depth, expand, dot_timeout)


def write_graph(analysis, path, fmt: str | None = None, rankdir: str = "TB", depth: int | None = None,
                expand: bool = False, dot_timeout: float = DOT_TIMEOUT) -> Path:
    """Write the drawing to ``path`` (format from ``fmt`` or the suffix) and return the path.

    The file appears complete or not at all (``shapecalc.core.fileio``); a FIFO, symlink, folder or
    read-only file at ``path`` is refused, not replaced. Errors name ``path`` and ``format``;
    ``dot`` is stopped after ``dot_timeout`` seconds (:class:`GraphvizTimeout`).
    """
    from shapecalc.output.registry import for_output

    chosen = for_output(str(path), fmt, "graph")
    return Path(write(analysis, chosen, str(path), rankdir=rankdir, depth=depth, expand=expand,
                      dot_timeout=dot_timeout))


__all__ = ["AUTO_NODE_LIMIT", "BLOCK_COLOUR", "DOT_TIMEOUT", "Drawing", "FORMATS", "GraphvizFailed",
           "GraphvizNotFound", "GraphvizTimeout", "KIND_COLOURS", "NO_DOT", "RANKDIRS", "analysis_to_dot",
           "auto_depth", "build_graph", "check_timeout", "pipe", "printable", "write_graph"]
