"""HTML output: the table fragment, ``show --format html`` and the report page, parsed (not
compared as text) and checked against the analysis; the browser tests are in test_report_browser."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser

import pytest

from shapecalc import analyze
from shapecalc.core.blocks import Sequential
from shapecalc.core.layers import Conv2d, ReLU
from shapecalc.output import human_count, rf_sizes, shape_text
from shapecalc.output.html import report_data, table_html, to_html, to_report

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


class Page(HTMLParser):
    """Rows of the table (cells as text, with their data-name), tags seen, and script bodies."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple[str, list[str]]] = []
        self.headers: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self._cell: list[str] | None = None
        self._in_th = False
        self._script: dict | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "tr" and "data-name" in attrs:
            self.rows.append((attrs["data-name"], []))
        elif tag == "td" and self.rows:
            self._cell = []
        elif tag == "th":
            self._in_th, self._cell = True, []
        elif tag == "script":
            self._script = attrs
            self.scripts.append((attrs, ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            (self.headers if self._in_th else self.rows[-1][1]).append(text)
            self._cell, self._in_th = None, False
        elif tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._script is not None:
            attrs, body = self.scripts[-1]
            self.scripts[-1] = (attrs, body + data)


def test_table_rows_match_the_analysis():
    a = analyze("resnet18")
    page = Page(table_html(a))
    assert [name for name, _ in page.rows] == [r.name for r in a.rows()]
    assert page.headers[:3] == ["#", "name", "layer"]
    cells = dict(page.rows)
    for rec in a.records:
        row = cells[rec.name]
        assert row[2] == rec.description and row[4] == shape_text(rec.output_shape)
        assert row[5] == f"{rec.params:,}" and row[6] == human_count(rec.macs)
    assert cells["b2"][0] == "" and cells["b2"][5] == f"{a.blocks['b2'].params:,}"


def test_a_flat_model_has_no_repeated_name_column():
    a = analyze("alexnet")
    page = Page(table_html(a))
    assert "name" not in page.headers and len(page.rows[0][1]) == len(page.headers)
    assert page.rows[0][1][:2] == ["0", a.records[0].description]


def test_explain_puts_the_arithmetic_under_the_layer():
    a = analyze("alexnet")
    page = Page(table_html(a, explain=True))
    first = dict(page.rows)["0"][1]
    assert "= 54" in first and first.startswith(a.records[0].description)


def test_names_are_text_not_markup():
    evil = '<img src=x onerror=alert(1)>"\'&\x00'
    a = analyze(Sequential({evil: Conv2d(1, 2, 3), "r": ReLU()}), (1, 1, 8, 8))
    text = to_html(a)
    assert "<img" not in text
    page = Page(text)
    assert page.rows[0][0] == evil.replace("\x00", "\u2400")  # shown, as in the graph


def test_show_page_is_self_contained():
    text = to_html(analyze("lenet"), depth=0)
    page = Page(text)
    assert text.startswith("<!DOCTYPE html>")
    csp = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv"))
    assert "default-src 'none'" in csp
    assert not [a for t, a in page.tags if t in ("link", "script", "img") and
                any(v.startswith(("http", "//")) for k, v in a.items() if k in ("href", "src"))]
    assert "prefers-color-scheme: dark" in text


def test_report_data_carries_arithmetic_notes_and_field():
    a = analyze("alexnet")
    data = report_data(a)
    first = data["layers"]["0"]
    assert first["explain"] == a.records[0].explain()
    assert first["notes"] == [str(n) for n in a.records[0].notes]
    assert [ax["size"] for ax in first["rf"]] == rf_sizes(a.records[0].rf) == [11, 11]
    assert data["layers"]["13"]["rf"] is None  # Flatten: global


def test_report_without_graph_needs_no_graphviz(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    a = analyze("resnet18")
    page = Page(to_report(a, graph=False))
    data = json.loads(next(body for attrs, body in page.scripts if attrs.get("id") == "sc-data"))
    assert set(data["layers"]) == {r.name for r in a.records} | set(a.blocks)
    assert data["graph_ids"] == {}


def test_report_has_the_memory_section_with_the_figures_of_memory():
    from shapecalc.output.memory import size

    a = analyze("alexnet")
    text = to_report(a, graph=False)
    report = a.memory(device="h100")
    assert "Training memory and roofline" in text and "What dominates" in text
    assert f"peak, training: {size(report.peak_train)}" in text
    assert f"saved activations: {size(report.saved_activations)}" in text


@needs_dot
def test_report_embeds_the_graph_and_maps_its_nodes():
    a = analyze("resnet18")
    text = to_report(a)
    # the graph and the memory section's roofline, each once, inline (no XML prolog)
    assert "<?xml" not in text and text.count("<svg") == 2 and text.count('aria-label="roofline"') == 1
    page = Page(text)
    data = json.loads(next(body for attrs, body in page.scripts if attrs.get("id") == "sc-data"))
    svg_ids = {a_["id"] for t, a_ in page.tags if t == "g" and a_.get("class") == "node"}
    assert set(data["graph_ids"]) <= svg_ids
    assert set(data["graph_ids"].values()) <= set(data["layers"])
    script = next(body for attrs, body in page.scripts if not attrs)
    assert "textContent" in script and "innerHTML" not in script


def test_script_data_cannot_close_its_script_tag():
    a = analyze(Sequential({"</script><b>": Conv2d(1, 2, 3)}), (1, 1, 8, 8))
    text = to_report(a, graph=False)
    data_script = re.search(r'<script type="application/json" id="sc-data">(.*?)</script>', text, re.S)
    assert "</script><b>" in json.loads(data_script.group(1))["layers"]



def test_show_page_takes_columns_and_torch_checks_like_the_table():
    from shapecalc.torch_bridge import NodeCheck

    a = analyze("alexnet")
    checks = [NodeCheck(r.name, r.output_shape, r.output_shape) for r in a.records]
    checks[2] = NodeCheck("2", (1, 96, 26, 26), (1, 96, 27, 27))
    page = Page(to_html(a, columns=["kernel", "notes"], checks=checks))
    assert page.headers == ["#", "layer", "kernel", "torch", "notes"]
    cells = dict(page.rows)
    assert cells["0"][2] == "11×11" and cells["2"][3] == "✗ 1×96×27×27" and cells["1"][3] == "✓"


def test_show_format_html_honours_columns(capsys):
    from shapecalc.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["show", "alexnet", "--format", "html", "--columns", "input,kernel"])
    assert exc.value.code == 0
    assert Page(capsys.readouterr().out).headers == ["#", "layer", "input shape", "kernel"]
