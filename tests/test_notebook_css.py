"""The notebook table reads right under Jupyter's own stylesheets: text columns (names, layers,
shapes, notes) left-aligned, numbers right-aligned, names keeping their tree guides.

JupyterLab (and Notebook 7) right-align every cell of an output table with
``:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td {text-align: right}``, a more specific
rule than a plain ``.shapecalc-table td``; the classic Notebook does the same with
``.rendered_html td``. Their real rules are in ``tests/data/notebook_css/`` (each file names the
package and file it was copied from); chromium computes each cell's style with them loaded as
the page's stylesheet, the output wrapped in the element each front end puts it in.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import shapecalc
from shapecalc.diagnose import diagnose

CSS = Path(__file__).resolve().parent / "data" / "notebook_css"
#: (stylesheet, the classes of the element an HTML output is rendered into)
FRONT_ENDS = {
    "jupyterlab": ("jupyterlab-rendermime.css",
                   "jp-OutputArea-output jp-RenderedHTMLCommon jp-RenderedHTML"),
    "classic": ("classic-notebook.css", "output_html rendered_html output_subarea output_execute_result"),
}

pytestmark = pytest.mark.slow


def computed(chromium, front_end: str, html: str) -> list[dict]:
    sheet, classes = FRONT_ENDS[front_end]
    wrapper = '<div class="output_area">' if front_end == "classic" else "<div>"
    page = chromium.new_page()
    try:
        page.set_content(f"<!doctype html><html><head><style>{(CSS / sheet).read_text()}</style>"
                         f"</head><body>{wrapper}<div class=\"{classes}\">{html}</div></div></body></html>")
        return page.eval_on_selector_all(
            ".shapecalc-table td, .shapecalc-table th",
            "cells => cells.map(c => ({cls: c.className, tag: c.tagName, text: c.textContent,"
            " align: getComputedStyle(c).textAlign, space: getComputedStyle(c).whiteSpace}))")
    finally:
        page.close()


@pytest.mark.parametrize("front_end", sorted(FRONT_ENDS))
def test_text_left_numbers_right(chromium, front_end):
    html = shapecalc.analyze("resnet18")._repr_html_()
    cells = computed(chromium, front_end, html)
    assert len(cells) > 100
    for c in cells:
        want = "right" if "num" in c["cls"].split() else "left"
        assert c["align"] == want, (front_end, c)
    # The names column keeps its tree guides, and no cell wraps.
    names = [c for c in cells if "name" in c["cls"].split() and c["tag"] == "TD"]
    assert names and all(c["space"] == "pre" for c in names), names[:2]
    layers = [c for c in cells if "layer" in c["cls"].split() and c["tag"] == "TD"]
    assert layers and all(c["space"] == "nowrap" for c in layers)


@pytest.mark.parametrize("front_end", sorted(FRONT_ENDS))
def test_a_diagnosis_reads_left_aligned(chromium, front_end):
    html = diagnose("alexnet", (1, 1, 64, 64))._repr_html_()
    cells = computed(chromium, front_end, html)
    assert cells
    assert all(c["align"] == "left" for c in cells), cells


@pytest.mark.parametrize("front_end", sorted(FRONT_ENDS))
def test_the_stylesheets_really_right_align(chromium, front_end):
    """The copied rules do what the fix is for: a plain table in the same place is right-aligned."""
    cells = computed(chromium, front_end,
                     '<div class="shapecalc-table"><table><tr><td>x</td></tr></table></div>'
                     .replace('class="shapecalc-table"', 'class="shapecalc-table plain"'))
    assert [c["align"] for c in cells] == ["right"]
