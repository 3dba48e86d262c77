"""One colour per layer kind, for every output that colours layers: the terminal table (rich),
the HTML table of ``show --format html`` and of the report, the notebook's table, and the graph.

Each kind has one hue, in the shade each surface needs: a pale fill for graph nodes (black text
on it), a dark text colour for a light page and a light one for a dark page, a mid-tone marker
that reads on white and on near-black alike (the notebook inherits the page's theme), and the
nearest of rich's named terminal colours. A reader who learns "Linear is blue" in one output
finds it blue in all of them (``tests/test_palette.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from shapecalc.core.layers.base import LayerKind
from shapecalc.output import BLOCK_KIND


@dataclass(frozen=True)
class KindColour:
    """The shades of one layer kind's hue."""

    label: str  # the graph legend's words
    fill: str  # graph node background
    text: str  # layer text on a light page
    text_dark: str  # layer text on a dark page
    marker: str  # the notebook's bar beside the layer
    terminal: str  # rich style name


#: Layer kind (``Layer.kind``, plus ``block`` and ``other``) → its colours.
PALETTE: dict[LayerKind, KindColour] = {
    LayerKind.CONV: KindColour("convolution", "#c5f6fa", "#0b7285", "#66d9e8", "#06b6d4", "cyan"),
    LayerKind.POOL: KindColour("pooling", "#f3d9fa", "#862e9c", "#e599f7", "#d946ef", "magenta"),
    LayerKind.NORM: KindColour("normalisation", "#fff3bf", "#946c00", "#ffd43b", "#eab308", "yellow"),
    LayerKind.ACTIVATION: KindColour("activation", "#d3f9d8", "#2b8a3e", "#8ce99a", "#22c55e", "green"),
    LayerKind.LINEAR: KindColour("linear", "#d0ebff", "#1864ab", "#74c0fc", "#3b82f6", "blue"),
    LayerKind.RESHAPE: KindColour("reshape / flatten", "#e9ecef", "#495057", "#ced4da", "#a3a3a3", "white"),
    LayerKind.DROPOUT: KindColour("dropout", "#f8f9fa", "#868e96", "#adb5bd", "#737373", "bright_black"),
    LayerKind.MERGE: KindColour("add / concat", "#ffe8cc", "#d9480f", "#ffa94d", "#f97316", "dark_orange"),
    LayerKind.OTHER: KindColour("other", "#f8f9fa", "#495057", "#ced4da", "#a3a3a3", ""),
}

#: Collapsed blocks (the graph's grey boxes, the tables' bold summed rows).
BLOCK = KindColour("collapsed block", "#dee2e6", "#212529", "#e9ecef", "#8b5cf6", "bold")


def kind_colour(kind: str) -> KindColour:
    """The colours of ``kind`` (``block`` included); an unknown kind is ``other``."""
    return BLOCK if kind == BLOCK_KIND else PALETTE.get(kind, PALETTE[LayerKind.OTHER])


def page_css(scope: str = ".sc-root", row: str = "tr.sc-{kind} td.layer") -> str:
    """CSS colouring each kind's layer cell on a page that is light, or dark when the reader's
    theme asks (``prefers-color-scheme``)."""
    light = " ".join(f"--sc-{k}: {c.text};" for k, c in PALETTE.items())
    dark = " ".join(f"--sc-{k}: {c.text_dark};" for k, c in PALETTE.items())
    rules = "".join(f"{scope} {row.format(kind=k)} {{ color: var(--sc-{k}); }}\n" for k in PALETTE)
    return (f"{scope} {{ {light} }}\n@media (prefers-color-scheme: dark) {{ {scope} {{ {dark} }} }}\n"
            + rules)


__all__ = ["BLOCK", "PALETTE", "KindColour", "kind_colour", "page_css"]
