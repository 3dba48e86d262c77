"""The HTML table (Jupyter's ``_repr_html_``): well formed, complete, theme-neutral."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from shapecalc import analyze
from shapecalc.diagnose import diagnose
from shapecalc.output import record_notes
from shapecalc.output.html_table import analysis_html, table_html

VOID = {"br", "hr", "img", "meta", "link", "input", "col"}


class Checker(HTMLParser):
    """Checks that every element closes in order; collects cell texts per row."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.rows: list[list[str]] = []
        self.text: list[str] = []
        self.in_cell = False

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self.in_cell, self.text = True, []

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()
        if tag in ("td", "th"):
            self.rows[-1].append("".join(self.text))
            self.in_cell = False

    def handle_data(self, data):
        if self.in_cell:
            self.text.append(data)


def parsed(html: str) -> Checker:
    checker = Checker()
    checker.feed(html)
    checker.close()
    assert checker.stack == []
    return checker


@pytest.mark.parametrize("name, depth", [("alexnet", None), ("resnet18", 1), ("googlenet", None)])
def test_every_row_is_in_the_html_table(name, depth):
    result = analyze(name)
    page = parsed(analysis_html(result, depth=depth))
    body = [r for r in page.rows if r and r[0] != "#"]
    records = list(result.rows(depth))
    assert len(body) == len(records)
    for cells, rec in zip(body, records):
        assert any(c.startswith(rec.description) for c in cells)
        assert "×".join(map(str, rec.output_shape)) in cells
        assert f"{rec.params:,}" in cells


def test_totals_notes_and_escaping():
    result = analyze("alexnet")
    html = result._repr_html_()
    assert "Total params: 46,764,746 (46.76 M)" in html and "FLOPs = 2·MACs" in html
    assert "in_features=6400 derived from the input" in html
    assert "Conv2d(1→96, k=11, s=4, p=1)" in html
    assert "<script" not in html  # a notebook output, not a page: no code runs


def test_readable_in_light_and_dark_themes():
    """Text and backgrounds come from the page; the only colours are the kind markers."""
    html = analysis_html(analyze("resnet18"))
    style = html[html.index("<style>"): html.index("</style>")]
    assert "color:inherit" in style and "background:transparent" in style
    colour_rules = re.findall(r"([\w-]*color)\s*:\s*(#[0-9a-f]{3,6})", style)
    assert colour_rules and {prop for prop, _ in colour_rules} == {"border-left-color"}
    assert "rgba(127,127,127" in style  # grey rules: visible on white and on black


def test_chosen_columns_and_explain_rows():
    html = table_html(analyze("alexnet"), explain=True,
                      columns=["input_size", "kernel_size", "params_percent"])
    page = parsed(html)
    assert page.rows[0] == ["#", "layer", "input shape", "kernel", "params %"]
    assert ["0", "Conv2d(1→96, k=11, s=4, p=1)", "1×1×224×224", "11×11", "0.03%"] in page.rows
    assert "floor((224 − 11 + 2 + 4) / 4) = floor(219 / 4) = 54" in html


def test_diagnosis_html_lists_the_checked_fixes():
    diag = diagnose("alexnet", (1, 1, 28, 28))
    page = parsed(diag._repr_html_())
    fields = {row[0]: row[1] for row in page.rows if len(row) == 2}
    assert fields["at node"].startswith("'5'") and fields["input"] == "1×1×28×28"
    for fix in diag.fixes:
        assert fix.replace("'", "&#x27;") in diag._repr_html_()
    assert "does not fit" in diag._repr_html_()


class Cells(HTMLParser):
    """The table's header texts and, per ``data-row``, its cell texts (``convert_charrefs``:
    what a browser shows)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.headers: list[str] = []
        self.rows: dict[int, list[str]] = {}
        self.names: dict[int, str] = {}
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._head = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "thead":
            self._head = True
        elif tag == "tr" and "data-row" in attrs:
            self._row = self.rows.setdefault(int(attrs["data-row"]), [])
            self.names[int(attrs["data-row"])] = attrs["data-name"]
        elif tag in ("td", "th") and (self._head or self._row is not None):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            (self.headers if self._head else self._row).append("".join(self._cell))
            self._cell = None
        elif tag == "thead":
            self._head = False
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def by_header(self) -> list[dict[str, str]]:
        return [dict(zip(self.headers, self.rows[i], strict=True)) for i in sorted(self.rows)]


def _weird_names():
    from shapecalc.core.blocks import Sequential
    from shapecalc.core.layers import Conv2d, MaxPool2d, ReLU

    return analyze(Sequential({'a"<b>&\n\x01': Conv2d(1, 4, 3, stride=2),
                               "</td>": MaxPool2d(3, 2), "r": ReLU()}), (1, 1, 30, 31))


@pytest.mark.parametrize("make, depth", [
    (lambda: analyze("alexnet"), None),  # notes: dropped pixels, in_features derived
    (lambda: analyze("resnet18"), None),  # blocks: tree labels, expanded block rows
    (lambda: analyze("resnet18"), 1),  # collapsed blocks
    (lambda: analyze("googlenet"), None),  # concatenations: several input shapes
    (_weird_names, None),  # names that are markup, control characters, odd sizes
])
def test_page_report_and_notebook_show_the_same_cells(make, depth):
    """One writer: the page, the report and the notebook agree cell for cell, whichever
    columns each shows, and every row says which record it is."""
    from shapecalc.output.html import PAGE_COLUMNS, to_html, to_report

    result = make()
    page = Cells(to_html(result, depth=depth))
    notebook_all = Cells(analysis_html(result, depth=depth, columns=PAGE_COLUMNS))
    notebook = Cells(analysis_html(result, depth=depth))
    records = list(result.rows(depth))
    assert page.headers == notebook_all.headers and len(page.rows) == len(records)
    assert page.by_header() == notebook_all.by_header()
    assert page.names == notebook.names == {i: r.name.replace("\x01", "\u2401").replace("\n", "\u240a")
                                            for i, r in enumerate(records)}
    for full, short in zip(page.by_header(), notebook.by_header()):
        assert short == {title: full[title] for title in short}
    if depth is None:  # the report always shows every row
        page_html = to_report(result, graph=False)
        # The report holds more tables than the layer table (the memory panel): compare that one.
        start = page_html.index('<table id="sc-table"')
        report = Cells(page_html[start:page_html.index("</table>", start) + len("</table>")])
        assert report.headers == page.headers and report.by_header() == page.by_header()
    for cells, rec in zip(page.by_header(), records):
        assert cells["output shape"] == "×".join(map(str, rec.output_shape))
        assert cells["notes"] == "; ".join(str(n) for n in record_notes(rec))
    if result.model == "alexnet":
        assert any("in_features=6400 derived from the input" in c["notes"] for c in page.by_header())
