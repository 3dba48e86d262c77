"""How analyses present themselves in Python: short ``repr`` and IPython's pretty printer
(Jupyter's HTML lives in :mod:`.html_table`; a diagnosis's text in :mod:`.diagnosis`).

A ``repr`` is one line a reader can take in at a glance (model, input → output, totals); the
table is ``str()``, ``table()`` or the notebook display, so a list of analyses stays readable.
"""

from __future__ import annotations

import shutil

from shapecalc.output.registry import renderer
from shapecalc.output import human_count, shape_text, total_macs_text


@renderer("repr", summary="one line: model, input → output, totals (library only)")
def analysis_repr(analysis) -> str:
    """``<Analysis alexnet: 1×1×224×224 → 1×10, 21 layers, 46,764,746 params (46.76 M), …>``."""
    return (f"<{type(analysis).__name__} {analysis.model}: {shape_text(analysis.input_shape)} → "
            f"{shape_text(analysis.output_shape)}, {len(analysis.records)} layers, "
            f"{analysis.total_params:,} params ({human_count(analysis.total_params)}), "
            f"{total_macs_text(analysis)} MACs>")


def terminal_width() -> int:
    """The width of the terminal Python runs in (80 when there is none, as in a kernel)."""
    return shutil.get_terminal_size((80, 24)).columns


__all__ = ["analysis_repr", "terminal_width"]
