"""One palette per layer kind: the table, the notebook, the report and the graph colour a kind
with shades of one hue, all read from ``shapecalc.output.palette``."""

from __future__ import annotations

import colorsys
import re

import pytest

import shapecalc
from shapecalc.output.palette import BLOCK, PALETTE, kind_colour

#: rich's named colours used for the terminal, as the hue they show.
TERMINAL_HUES = {"cyan": 180, "magenta": 300, "yellow": 60, "green": 120, "blue": 240,
                 "dark_orange": 30}
GREYS = {"reshape", "dropout", "other"}


def hue(colour: str) -> float:
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return colorsys.rgb_to_hsv(r, g, b)[0] * 360


def saturation(colour: str) -> float:
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return colorsys.rgb_to_hsv(r, g, b)[1]


def hue_distance(a: float, b: float) -> float:
    return min(abs(a - b), 360 - abs(a - b))


@pytest.mark.parametrize("kind", sorted(set(PALETTE) - GREYS))
def test_every_shade_of_a_kind_is_one_hue(kind):
    c = PALETTE[kind]
    shades = [c.fill, c.text, c.text_dark, c.marker]
    for shade in shades:
        assert hue_distance(hue(shade), hue(c.marker)) <= 30, (kind, shade)
    assert hue_distance(TERMINAL_HUES[c.terminal], hue(c.marker)) <= 45, (kind, c.terminal)


def test_kinds_are_told_apart():
    hues = {k: hue(c.marker) for k, c in PALETTE.items() if k not in GREYS}
    for a in hues:
        for b in hues:
            if a < b:
                assert hue_distance(hues[a], hues[b]) >= 20, (a, b)
    for kind in GREYS:
        assert saturation(PALETTE[kind].fill) < 0.1


def test_graph_fills_nodes_with_the_palette():
    dot = shapecalc.analyze("alexnet").to_dot()
    line = next(l for l in dot.splitlines() if "Linear(6400" in l)
    assert PALETTE["linear"].fill in line
    line = next(l for l in dot.splitlines() if "Conv2d(1" in l)
    assert PALETTE["conv"].fill in line


def test_notebook_marks_rows_with_the_palette():
    html = shapecalc.analyze("alexnet")._repr_html_()
    for kind in ("conv", "pool", "activation", "linear"):
        assert f"tr.sc-{kind} td.layer{{border-left-color:{PALETTE[kind].marker}}}" in html, kind


def test_page_and_report_colour_text_with_the_palette():
    from shapecalc.output.html import to_report

    result = shapecalc.analyze("alexnet")
    for page in (result.render("html"), to_report(result, graph=False)):
        for kind in ("conv", "linear"):
            assert f"--sc-{kind}: {PALETTE[kind].text};" in page
            assert f"--sc-{kind}: {PALETTE[kind].text_dark};" in page
            assert re.search(rf"tr\.sc-{kind} td\.layer \{{ color: var\(--sc-{kind}\); \}}", page)


def test_terminal_styles_rows_with_the_palette():
    from shapecalc.output.table_rows import KIND_STYLES, table_model

    model = table_model(shapecalc.analyze("alexnet"))
    styles = {row.record.layer.kind: row.style for row in model.rows
              if row.record.layer is not None and not row.record.is_block}
    assert styles["linear"] == PALETTE["linear"].terminal == KIND_STYLES["linear"]
    assert styles["conv"] == PALETTE["conv"].terminal


def test_unknown_kinds_and_blocks():
    assert kind_colour("block") is BLOCK
    assert kind_colour("no such kind") is PALETTE["other"]
