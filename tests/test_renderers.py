"""The output-format registry: one name → function table behind show, graph and the API."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from shapecalc import analyze
from shapecalc.output import registry as renderers
from shapecalc.core.fileio import OutputError
from shapecalc.output.registry import for_output, get, names, render, renderer

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


def test_commands_offer_their_formats():
    assert set(names("show")) >= {"table", "json", "csv", "markdown"}
    assert set(names("graph")) == {"dot", "svg", "png", "pdf"}
    assert {"dict", "drawing"} <= set(names()) and not {"dict", "drawing"} & set(names("show"))
    assert get("png").binary and not get("svg").binary and not get("json").binary


def test_the_cli_choices_come_from_the_registry():
    from shapecalc.cli.graph import graph
    from shapecalc.cli.show import show

    def choices(command):
        return tuple(next(p for p in command.params if p.name == "fmt").type.choices)

    assert choices(show) == names("show")
    assert choices(graph) == names("graph")


def test_analysis_methods_delegate_to_the_registry():
    a = analyze("resnet18")
    assert a.to_dot(depth=1, rankdir="LR") == render(a, "dot", depth=1, rankdir="LR")
    assert json.loads(a.to_json()) == a.to_dict() == render(a, "dict")
    assert a.render("csv", depth=0) == render(a, "csv", depth=0)
    with pytest.raises(TypeError):
        a.render("csv", rankdir="LR")  # the API is strict about options …


def test_accepted_drops_options_a_format_does_not_take():
    # … while one command line's flags serve several formats.
    options = {"depth": 1, "explain": True, "checks": None, "rankdir": "LR"}
    assert get("csv").accepted(options) == {"depth": 1}
    assert get("json").accepted(options) == {"explain": True, "checks": None}
    assert get("dot").accepted(options) == {"depth": 1, "rankdir": "LR"}


def test_a_new_format_is_one_decorated_function():
    @renderer("layer-names", summary="one layer name a line", suffixes=("names",), commands=("show",))
    def layer_names(analysis, depth=None):
        return "\n".join(r.name for r in analysis.rows(depth))

    try:
        a = analyze("lenet")
        assert a.render("layer-names").splitlines() == [r.name for r in a.records]
        assert "layer-names" in names("show") and "layer-names" not in names("graph")
        assert for_output("x.names", None, "show") is get("layer-names")
    finally:
        del renderers._REGISTRY["layer-names"]


def test_a_name_registered_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        renderer("json", summary="another json")(lambda analysis: "")


@pytest.mark.parametrize("path,fmt,param,words", [
    ("x.txt", None, "path", "cannot tell the format from 'x.txt'"),
    ("x.svg", "png", "format", "png does not match the file name 'x.svg'"),
    ("x.svg", "gif", "format", "expected one of dot, svg, png, pdf, got 'gif'"),
])
def test_output_errors_name_the_parameter(path, fmt, param, words):
    with pytest.raises(OutputError) as info:
        for_output(path, fmt, "graph")
    assert info.value.param == param and words in str(info.value)
    assert str(info.value) == f"{param}: {info.value.reason}"
    assert str(info.value.for_param("-o")) == f"-o: {info.value.reason}"


def test_format_from_suffix_or_default(tmp_path):
    assert for_output(str(tmp_path / "b.GV"), None, "graph") is get("dot")
    assert for_output("b.pdf", "PDF", "graph") is get("pdf")
    assert for_output(None, None, "graph", default="dot") is get("dot")
    assert for_output("-", "png", "graph") is get("png")


def test_discovery_imports_no_heavy_library():
    # Every renderer module is imported to fill the registry, so they must keep rich, graphviz
    # and torch inside their functions.
    code = ("import sys; from shapecalc.output.registry import names; names(); "
            "print(sorted(m for m in ('rich', 'graphviz', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@needs_dot
def test_draw_displays_as_svg_and_saves(tmp_path):
    drawing = analyze("lenet").draw(rankdir="LR")
    bundle = drawing._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"] and "1×6×28×28" in bundle["image/svg+xml"]
    assert "rankdir=LR" in drawing.source
    out = drawing.save(tmp_path / "lenet.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawing.save(tmp_path / "lenet.dot").read_text(encoding="utf-8") == drawing.source
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet.dot", "lenet.png"]


def test_draw_without_graphviz_says_so_in_the_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    bundle = analyze("lenet").draw()._repr_mimebundle_()
    assert list(bundle) == ["text/plain"] and "apt-get install graphviz" in bundle["text/plain"]
