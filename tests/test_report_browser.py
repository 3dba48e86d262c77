"""The HTML report in a real browser: Debian's chromium driven by Playwright (its own browser
download is never used). Every expected number comes from the engine, not from the test.

Skips with the reason where chromium or Playwright is missing, except under CI=true, where
`.ci/run` installs both and a missing browser must fail rather than pass silently.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from shapecalc import analyze
from shapecalc.output import rf_sizes
from shapecalc.output.html import to_report


def _missing() -> str | None:
    if shutil.which("dot") is None:
        return "Graphviz `dot` is not installed; the report's graph needs it"
    return None


MISSING = _missing()
if MISSING and os.environ.get("CI"):
    raise RuntimeError(f"browser tests cannot run in CI: {MISSING}")
pytestmark = [pytest.mark.skipif(MISSING is not None, reason=MISSING or ""), pytest.mark.slow]


@pytest.fixture(scope="module")
def browser(chromium):
    """Debian's chromium (conftest's ``chromium``: skips where it is missing, fails in CI)."""
    return chromium


class Report:
    """One report opened in a fresh page, with every console message, page error and request."""

    def __init__(self, browser, tmp_path: Path, model: str, width: int = 1400) -> None:
        self.analysis = analyze(model)
        self.path = tmp_path / f"{model}.html"
        self.path.write_text(to_report(self.analysis), encoding="utf-8")
        self.page = browser.new_page(viewport={"width": width, "height": 1000})
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.problems.append(m.text))
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(self.path.as_uri())

    def click_node(self, name: str) -> None:
        node_id = self.page.evaluate(
            "name => { const d = JSON.parse(document.getElementById('sc-data').textContent);"
            " return Object.keys(d.graph_ids).find(k => d.graph_ids[k] === name); }", name)
        assert node_id, f"{name} is not a node of the graph"
        self.page.click(f"#sc-graph g.node[id='{node_id}']")

    def click_row(self, name: str) -> None:
        self.page.locator("#sc-table tr.sc-row").filter(
            has=self.page.locator("td")).nth(self._row_index(name)).click()

    def _row_index(self, name: str) -> int:
        return [r.name for r in self.analysis.rows()].index(name)

    def arithmetic(self) -> str:
        return self.page.inner_text("#sc-details .sc-arithmetic")

    def field(self) -> dict:
        """The close-up drawing's field: its drawn size in input pixels, per axis."""
        return self.page.eval_on_selector(
            "svg.sc-rf-closeup .sc-rf-field",
            "e => { const cell = +e.ownerSVGElement.dataset.cell, box = e.getBBox();"
            " return {w: box.width / cell, h: box.height / cell, cell}; }")


@pytest.fixture
def alexnet(browser, tmp_path):
    report = Report(browser, tmp_path, "alexnet")
    yield report
    report.page.close()


def test_alexnet_first_conv_shows_its_arithmetic_and_field(alexnet, tmp_path):
    first = alexnet.analysis.records[0]
    alexnet.click_node(first.name)
    text = alexnet.arithmetic()
    assert text.splitlines() == first.explain()
    assert f"= {first.output_shape[2]}" in text and first.output_shape[2] == 54
    field = alexnet.field()
    assert (field["w"], field["h"]) == (11, 11) == tuple(rf_sizes(first.rf))
    assert field["cell"] >= 4  # a close-up: every pixel visible
    assert alexnet.page.locator("#sc-table tr.sc-selected").get_attribute("data-name") == first.name
    caption = alexnet.page.inner_text(".sc-rf-caption")
    assert "rows -1…9" in caption and "21 of the field's pixels being padding" in caption  # p=1
    shot = tmp_path / "alexnet.png"
    alexnet.page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert alexnet.problems == []
    assert alexnet.requests == [alexnet.path.as_uri()]  # self-contained: nothing else fetched


def test_rows_select_layers_and_the_field_follows_the_output_pixel(alexnet):
    conv = next(r for r in alexnet.analysis.records if r.name == "3")
    alexnet.click_row(conv.name)
    assert alexnet.arithmetic().splitlines() == conv.explain()
    assert alexnet.field()["w"] == rf_sizes(conv.rf)[0] == 51
    # Output pixel (5, 0): the field moves down by 5 jumps, its size stays.
    alexnet.page.fill(".sc-pick input >> nth=0", "5")
    jump = int(conv.rf[0].jump)
    centre = int(conv.rf[0].start) + 5 * jump
    caption = alexnet.page.inner_text(".sc-rf-caption")
    assert f"rows {centre - 25}…{centre + 25}" in caption
    assert alexnet.field()["h"] == 51
    assert alexnet.problems == []


def test_the_field_inside_the_image_is_what_autograd_reaches(alexnet):
    """AlexNet's '5' (pool after conv2), output pixel (11, 5): rows 159…225 in theory, 159…217
    inside the image (tests/test_receptive_field.py checks those rows against autograd)."""
    alexnet.click_row("5")
    alexnet.page.fill(".sc-pick input >> nth=0", "11")
    alexnet.page.fill(".sc-pick input >> nth=1", "5")
    caption = alexnet.page.inner_text(".sc-rf-caption")
    assert "reads input rows 159…225 and columns 63…129 in theory (67×67 pixels" in caption
    assert "inside the 224×224 image it reads rows 159…217 and columns 63…129 (59×67)" in caption
    inside = alexnet.page.eval_on_selector(
        "svg.sc-rf-closeup .sc-rf-inside",
        "e => { const cell = +e.ownerSVGElement.dataset.cell, box = e.getBBox();"
        " return {w: box.width / cell, h: box.height / cell}; }")
    assert (inside["h"], inside["w"]) == (59, 67)
    assert alexnet.field()["h"] == 67
    assert alexnet.problems == []


def test_global_layers_say_so(alexnet):
    alexnet.click_row("14")  # Linear after Flatten
    assert "global" in alexnet.page.inner_text("#sc-details")
    assert alexnet.page.locator("svg.sc-rf").count() == 0


def test_filter_box_hides_rows_and_dims_nodes(alexnet):
    alexnet.page.fill("#sc-filter", "maxpool")
    visible = alexnet.page.locator("#sc-table tr.sc-row:not(.sc-hidden)")
    expected = [r.name for r in alexnet.analysis.records if "maxpool" in r.description.lower()]
    assert visible.count() == len(expected) == 3
    assert alexnet.page.locator("#sc-graph g.node.sc-dim").count() == len(alexnet.analysis.records) - 3
    alexnet.page.fill("#sc-filter", "")
    assert alexnet.page.locator("#sc-table tr.sc-hidden").count() == 0


def test_resnet18_blocks_and_residual_layers(browser, tmp_path):
    report = Report(browser, tmp_path, "resnet18")
    try:
        a = report.analysis
        conv = next(r for r in a.records if r.layer is not None and r.layer.kind == "conv"
                    and r.depth >= 2 and r.layer.describe().find("s=2") >= 0)
        report.click_node(conv.name)
        assert report.arithmetic().splitlines() == conv.explain()
        assert report.field()["w"] == rf_sizes(conv.rf)[0]
        block = next(iter(a.blocks))
        report.click_row(block)
        details = report.page.inner_text("#sc-details")
        assert "(block)" in details and f"{a.blocks[block].params:,}" in details
        report.page.screenshot(path=str(tmp_path / "resnet18.png"), full_page=True)
        assert report.problems == []
    finally:
        report.page.close()


def test_any_name_selects_its_own_layer(browser, tmp_path):
    # Names are data: quotes, markup, a script end tag and control characters must neither break
    # the page nor select another layer.
    from shapecalc.core.blocks import Sequential
    from shapecalc.core.layers import Conv2d, ReLU

    names = ['a"b\\c<d>\n\x01', "</script><b>x", "plain"]
    model = Sequential({names[0]: Conv2d(1, 2, 3), names[1]: Conv2d(2, 3, 5), names[2]: ReLU()})
    analysis = analyze(model, (1, 1, 12, 12))
    path = tmp_path / "weird.html"
    path.write_text(to_report(analysis), encoding="utf-8")
    page = browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    try:
        page.goto(path.as_uri())
        for i, rec in enumerate(analysis.records):
            page.locator("#sc-table tr.sc-row").nth(i).click()
            assert page.inner_text("#sc-details .sc-description") == rec.description
            assert page.eval_on_selector("#sc-details h2", "e => e.textContent") == rec.name
        assert problems == []
    finally:
        page.close()


def test_a_sequence_model_draws_positions(browser, tmp_path):
    from shapecalc.core.blocks import Sequential
    from shapecalc.core.layers import Conv1d, ReLU

    analysis = analyze(Sequential(Conv1d(2, 4, 5, stride=2, padding=2), ReLU()), (1, 2, 50))
    path = tmp_path / "seq.html"
    path.write_text(to_report(analysis), encoding="utf-8")
    page = browser.new_page()
    try:
        page.goto(path.as_uri())
        page.locator("#sc-table tr.sc-row").nth(0).click()
        axis = analysis.records[0].rf[0]
        lo, hi = axis.bounds(0)
        caption = page.inner_text(".sc-rf-caption")
        assert f"reads input positions {lo}…{hi} in theory ({axis.size} positions" in caption
        assert f"it reads 0…{hi} ({hi + 1}), {-lo} of the field being padding" in caption
        box = page.eval_on_selector("svg.sc-rf-closeup .sc-rf-field",
                                    "e => e.getBBox().width / +e.ownerSVGElement.dataset.cell")
        assert box == axis.size == 5
    finally:
        page.close()


@pytest.mark.parametrize("width", [760, 899])
def test_narrow_windows_stack_the_panels(browser, tmp_path, width):
    """Below 900 px the details panel goes under the table, each as wide as the window allows,
    so neither the table nor the arithmetic is clipped."""
    report = Report(browser, tmp_path, "alexnet", width=width)
    report.click_row("14")
    box = report.page.eval_on_selector(".sc-table-box", "e => e.getBoundingClientRect().toJSON()")
    details = report.page.eval_on_selector("#sc-details", "e => e.getBoundingClientRect().toJSON()")
    assert details["top"] >= box["bottom"]
    assert box["width"] > width * 0.9 and details["width"] > width * 0.9
    pre = report.page.eval_on_selector("#sc-details .sc-arithmetic",
                                       "e => ({client: e.clientWidth, scroll: e.scrollWidth})")
    assert pre["scroll"] <= pre["client"]  # the arithmetic fits: nothing hidden to scroll to
    assert report.problems == []
    report.page.close()


def test_wide_windows_keep_the_panels_side_by_side(browser, tmp_path):
    report = Report(browser, tmp_path, "alexnet", width=1200)
    box = report.page.eval_on_selector(".sc-table-box", "e => e.getBoundingClientRect().toJSON()")
    details = report.page.eval_on_selector("#sc-details", "e => e.getBoundingClientRect().toJSON()")
    assert details["left"] >= box["right"] and details["top"] < box["bottom"]
    report.page.close()


def test_linear_rows_show_their_parameter_and_mac_arithmetic(alexnet):
    linear = alexnet.analysis.record("14")
    alexnet.click_row("14")
    text = alexnet.arithmetic()
    assert text.splitlines() == linear.explain()
    assert "6,400·4,096 + 4,096 = 26,218,496" in text
    assert f"= {linear.macs:,}" in text
    assert "No size arithmetic" not in alexnet.page.inner_text("#sc-details")


def test_numbers_in_the_field_caption_have_thousands_separators(browser, tmp_path):
    """VGG-16's last pool sees 212×212 pixels of a 224×224 input: "30,060 of them padding"."""
    report = Report(browser, tmp_path, "vgg16")
    last_pool = [r for r in report.analysis.records if r.type == "MaxPool2d"][-1]
    report.click_row(last_pool.name)
    caption = report.page.inner_text(".sc-rf-caption")
    import re

    numbers = re.findall(r"\d+(?:,\d+)*", caption)
    assert any("," in n for n in numbers), caption
    assert all(re.fullmatch(r"\d{1,3}(,\d{3})*", n) for n in numbers), caption
    report.page.close()


def test_block_rows_fold_their_layers(browser, tmp_path):
    """A double-click folds a block's rows away and back, as --depth does in the text table."""
    report = Report(browser, tmp_path, "resnet18")
    try:
        a = report.analysis
        block = "b2"
        inside = [r.name for r in a.rows() if r.name.startswith(block + ".")]
        visible = "() => Array.from(document.querySelectorAll('#sc-table tbody tr.sc-row'))" \
                  ".filter(r => getComputedStyle(r).display !== 'none').length"
        before = report.page.evaluate(visible)
        index = [r.name for r in a.rows(ops=False)].index(block)
        row = report.page.locator(f"#sc-table tr.sc-row[data-row='{index}']")
        row.dblclick()
        assert report.page.evaluate(visible) == before - len(inside)
        row.dblclick()
        assert report.page.evaluate(visible) == before
        row.focus()
        report.page.keyboard.press("ArrowLeft")
        assert report.page.evaluate(visible) == before - len(inside)
        assert report.problems == []
    finally:
        report.page.close()
