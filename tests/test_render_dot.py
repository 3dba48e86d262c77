"""Graphviz output: DOT text (no binary needed), rendered SVG/PNG/PDF, and the missing-``dot`` path.

The DOT text is checked node by node against the analysis; rendered files are checked by
parsing them (SVG as XML, PNG/PDF by magic bytes), never by comparing images.
"""

from __future__ import annotations

import re
import shutil
import time
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shapecalc import analyze
from shapecalc.core.blocks import Sequential
from shapecalc.core.errors import ArgumentError
from shapecalc.core.fileio import OutputError
from shapecalc.core.layers import Conv2d, ReLU
from shapecalc.output import shape_text
from shapecalc.output.dot import (
    AUTO_NODE_LIMIT, KIND_COLOURS, GraphvizFailed, GraphvizNotFound, GraphvizTimeout, analysis_to_dot, auto_depth,
    build_graph, pipe, printable, write_graph,
)

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")
SVG = "{http://www.w3.org/2000/svg}"


def _unquote(value: str) -> str:
    """A DOT ID as written by the graphviz package (quoted only when needed) → its text."""
    if value.startswith('"'):
        return re.sub(r'\\(.)', r'\1', value[1:-1])
    return value


def _node_lines(dot: str) -> dict[str, str]:
    """Drawn node path → its DOT statement (the tooltip carries the path)."""
    return {_unquote(m.group(1)): line for line in dot.splitlines()
            if (m := re.search(r'tooltip=("(?:[^"\\]|\\.)*"|[^\s\]]+)\]$', line))}


def _edges(dot: str) -> list[tuple[str, str, str]]:
    return re.findall(r'^\s*(\w+) -> (\w+)(?: \[label=" ([^"]*) "\])?$', dot, flags=re.M)


@pytest.mark.parametrize("model", ["lenet", "googlenet", "resnet50", "densenet"])
def test_expanded_dot_has_every_node_with_its_shape(model):
    a = analyze(model)
    nodes = _node_lines(analysis_to_dot(a, expand=True))
    assert set(nodes) == {r.name for r in a.records}
    for rec in a.records:
        assert shape_text(rec.output_shape) in nodes[rec.name], rec.name
        if rec.params:
            assert f"{rec.params:,} params" in nodes[rec.name]


def test_edges_carry_the_producers_shape():
    a = analyze("lenet")
    dot = analysis_to_dot(a)
    edges = _edges(dot)
    shapes = [e[2] for e in edges if e[2]]
    # input → 0 → 1 → … → 11: one edge per layer, labelled with what flows along it.
    assert shapes == [shape_text(a.input_shape)] + [shape_text(r.output_shape) for r in a.records[:-1]]
    assert ("n12", "output", "") in edges


def test_residual_edges_fan_out_and_in():
    a = analyze("resnet18")
    dot = analysis_to_dot(a, expand=True)
    ids = {name: re.match(r"\s*(\w+) ", line).group(1) for name, line in _node_lines(dot).items()}
    into_add = {src for src, dst, _ in _edges(dot) if dst == ids["b3.0.add"]}
    assert into_add == {ids["b3.0.body.bn2"], ids["b3.0.shortcut"]}
    into_identity_add = {src for src, dst, _ in _edges(dot) if dst == ids["b3.1.add"]}
    assert into_identity_add == {ids["b3.1.body.bn2"], ids["b3.0.post"]}


def test_blocks_are_clusters_and_collapse_at_depth():
    a = analyze("resnet18")
    full = analysis_to_dot(a, expand=True)
    assert 'subgraph "cluster_b3.0"' in full and 'label="b3.0  ·  Residual"' in full
    top = analysis_to_dot(a, depth=0)
    assert "subgraph" not in top
    assert set(_node_lines(top)) == {"b1", "b2", "b3", "b4", "b5", "last"}
    assert "1×64×24×24 → 1×128×12×12" in _node_lines(top)["b3"]  # collapsed: in → out
    one = analysis_to_dot(a, depth=1)
    assert "b3.0" in _node_lines(one) and "b3.0.body.conv1" not in _node_lines(one)


def test_big_models_collapse_automatically_unless_expanded():
    a = analyze("resnet50")
    depth = auto_depth(a)
    assert depth is not None
    assert len(_node_lines(analysis_to_dot(a))) <= AUTO_NODE_LIMIT
    assert len(_node_lines(analysis_to_dot(a, expand=True))) == len(a.records) > AUTO_NODE_LIMIT
    assert auto_depth(analyze("lenet")) is None


def test_dense_identity_branch_draws_as_a_direct_edge():
    a = analyze("densenet")
    dot = analysis_to_dot(a, expand=True)
    assert "dense_blk1.0.identity" not in _node_lines(dot)
    ids = {name: re.match(r"\s*(\w+) ", line).group(1) for name, line in _node_lines(dot).items()}
    into_cat = {src for src, dst, _ in _edges(dot) if dst == ids["dense_blk1.0.cat"]}
    assert into_cat == {ids["b1.pool"], ids["dense_blk1.0.conv_block.conv"]}


def test_colours_follow_layer_kind_and_legend_lists_them():
    a = analyze("lenet-bn")
    nodes = _node_lines(analysis_to_dot(a))
    assert KIND_COLOURS["conv"][0] in nodes["0"]
    assert KIND_COLOURS["norm"][0] in nodes["1"]
    assert KIND_COLOURS["activation"][0] in nodes["2"]
    assert KIND_COLOURS["pool"][0] in nodes["3"]
    assert KIND_COLOURS["linear"][0] in nodes["9"]
    dot = analysis_to_dot(a)
    legend = next(line for line in dot.splitlines() if line.strip().startswith("legend "))
    for text in ("convolution", "pooling", "normalisation", "activation", "linear"):
        assert text in legend


def test_html_special_characters_are_escaped():
    model = Sequential({'a<b>&"c': Conv2d(1, 2, 3), "d": ReLU()})
    dot = analysis_to_dot(analyze(model, (1, 1, 5, 5)))
    assert "<B>a&lt;b&gt;&amp;&quot;c</B>" in dot
    assert 'tooltip="a<b>&\\"c"' in dot


#: Names that broke hand-written DOT or Graphviz's label parser: controls, quotes, backslashes
#: (escString sequences and a trailing one), HTML specials, non-characters, lone surrogates,
#: DOT keywords and punctuation, and a name longer than Graphviz's 16 KiB string limit.
NASTY_NAMES = ["a\x00b", "new\nline", 'quo"te', "back\\", "\\N\\G\\l", "<b>&amp;</b>", "tab\tcr\r",
               "\x1b[31m", "\x7f\x85", "\ud800", "\ufffe\uffff", "]]>", "é中🙂", " ", "-", "graph",
               "a;b{c}d[e]=f", "x" * 20000]


def _nested(names: list[str]):
    """A model whose blocks (clusters), layers and model name are all ``names``."""
    body = Sequential({f"{n}\x01{i}": Conv2d(1, 1, 1) for i, n in enumerate(names)})
    model = Sequential({names[0]: body, "relu": ReLU()})
    analysis = analyze(model, (1, 1, 4, 4))
    analysis.model = names[-1]
    return analysis


def _svg_texts(svg: bytes) -> set[str]:
    return {(t.text or "").strip() for t in ET.fromstring(svg).iter(f"{SVG}text")}


def test_printable_shows_every_unprintable_character():
    assert printable("a\x00b\nc\x7f\x85\ud800\ufffe") == "a\u2400b\u240ac\u2421[U+0085][U+D800][U+FFFE]"
    assert printable('quo"te<&>\\') == 'quo"te<&>\\'  # escaping is the quoting's job
    assert len(printable("x" * 5000)) == 1000


@needs_dot
@pytest.mark.parametrize("name", NASTY_NAMES, ids=lambda n: repr(n[:12]))
def test_dot_accepts_any_name(name):
    analysis = _nested([name])
    svg = pipe(build_graph(analysis, expand=True)[0], "svg")
    texts = _svg_texts(svg)
    for rec in analysis.records:
        shown = printable(rec.name).strip()
        assert not shown or shown in texts, shown


@needs_dot
@settings(max_examples=40)  # one `dot` run (~40 ms) per example, in CI too
@given(st.lists(st.text(st.characters(exclude_characters="."), min_size=1, max_size=12),
                min_size=1, max_size=4))  # "." separates path parts, so blocks refuse it
def test_dot_accepts_random_names(names):
    analysis = _nested(names)
    digraph, ids = build_graph(analysis, expand=True)
    texts = _svg_texts(pipe(digraph, "svg"))
    assert set(ids.values()) >= {r.name for r in analysis.records}
    for rec in analysis.records:
        shown = printable(rec.name).strip()
        assert not shown or shown in texts, shown


def test_tooltips_and_clusters_keep_backslashes_literal():
    analysis = _nested(["\\N"])
    dot = analysis_to_dot(analysis, expand=True)
    assert 'subgraph "cluster_\\\\N"' in dot  # "\\N": the text \N, not the node name
    assert _node_lines(dot)[printable("\\N.\\N\x010")]


@pytest.mark.parametrize("script,words", [
    ("cat >/dev/null\necho 'Warning: x' >&2\necho 'Error: bad label' >&2\nexit 3", "Error: bad label"),
    ("cat >/dev/null\nexit 1", "exit status 1"),
    ("exec 0<&-\nsleep 1\nexit 1", ""),  # stops reading at once: a broken pipe, not ours
])
def test_dot_rejecting_the_drawing_is_one_line(tmp_path, monkeypatch, script, words):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dot").write_text("#!/bin/sh\n" + script + "\n")
    (fake / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:/usr/bin:/bin")  # the fake first, `cat` and `sleep` after
    with pytest.raises(GraphvizFailed) as info:
        pipe(build_graph(analyze("resnet50"), expand=True)[0], "svg")
    text = str(info.value)
    assert text.startswith("Graphviz `dot` failed: ") and words in text and "\n" not in text


def test_bad_arguments_are_usage_errors_naming_the_parameter():
    # Library errors name the function's parameters; the CLI maps them to its flags.
    a = analyze("lenet")
    with pytest.raises(ArgumentError, match="^rankdir: expected one of TB, LR") as bad:
        analysis_to_dot(a, rankdir="BT")
    assert bad.value.param == "rankdir"
    with pytest.raises(OutputError, match="^path: cannot tell the format") as info:
        write_graph(a, "graph.txt")
    assert info.value.param == "path" and info.value.for_param("-o").args[0].startswith("-o: ")
    with pytest.raises(OutputError, match="^format: png does not match") as info:
        write_graph(a, "graph.svg", fmt="png")
    assert info.value.param == "format"


def test_dot_file_needs_no_graphviz(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = write_graph(analyze("lenet"), tmp_path / "lenet.gv")
    assert out.read_text(encoding="utf-8").startswith('digraph lenet {')


def test_missing_dot_gives_one_clear_line_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(GraphvizNotFound) as info:
        write_graph(analyze("lenet"), tmp_path / "lenet.png")
    text = str(info.value)
    assert "\n" not in text
    assert "apt-get install graphviz" in text and "brew install graphviz" in text and "--format dot" in text
    assert list(tmp_path.iterdir()) == []


def test_failed_render_leaves_the_existing_file_untouched(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dot").write_text("#!/bin/sh\nwhile read -r line; do :; done\n"
                              "echo 'Error: syntax error in line 1' >&2\nexit 1\n")
    (fake / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    target = tmp_path / "model.svg"
    target.write_text("keep me")
    with pytest.raises(Exception, match="Graphviz `dot` failed: Error: syntax error"):
        write_graph(analyze("lenet"), target)
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "model.svg"]


@needs_dot
def test_svg_parses_and_contains_every_node_label(tmp_path):
    a = analyze("resnet18")
    out = write_graph(a, tmp_path / "resnet18.svg", expand=True)
    texts = {(t.text or "").strip() for t in ET.parse(out).getroot().iter(f"{SVG}text")}
    for rec in a.records:
        assert rec.name in texts, rec.name
        assert rec.description in texts, rec.description
    assert "Legend" in texts


@needs_dot
@pytest.mark.parametrize("suffix,magic", [("png", b"\x89PNG\r\n\x1a\n"), ("pdf", b"%PDF")])
def test_binary_formats_render(tmp_path, suffix, magic):
    out = write_graph(analyze("googlenet"), tmp_path / f"g.{suffix}", rankdir="LR")
    assert out.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [f"g.{suffix}"]  # no temporary left behind


@needs_dot
def test_resnet50_png_is_not_scaled_down(tmp_path):
    # Graphviz shrinks a drawing past cairo's 32767-px limit, making text unreadable; the
    # fully expanded ResNet-50 at our dpi must stay under it (PNG IHDR: width, height).
    out = write_graph(analyze("resnet50"), tmp_path / "r50.png", expand=True)
    header = out.read_bytes()[16:24]
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")
    assert max(width, height) < 32767
    assert height > 10_000  # 175 layers at a readable size really are that tall


def test_analysis_to_dot_method_is_the_same_text():
    a = analyze("resnet18")
    assert a.to_dot(depth=1, rankdir="LR") == analysis_to_dot(a, depth=1, rankdir="LR")


@pytest.fixture
def hanging_dot(tmp_path, monkeypatch):
    """A `dot` on PATH that reads the drawing and then hangs."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dot").write_text("#!/bin/sh\ncat >/dev/null\nexec sleep 30\n")
    (fake / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:/usr/bin:/bin")


def test_a_dot_that_never_ends_is_stopped(tmp_path, hanging_dot):
    # Stopped at the limit, the file already there kept.
    target = tmp_path / "lenet.svg"
    target.write_text("keep me")
    started = time.monotonic()
    with pytest.raises(GraphvizTimeout) as info:
        write_graph(analyze("lenet"), target, dot_timeout=0.5)
    assert time.monotonic() - started < 10
    assert str(info.value) == ("Graphviz `dot -Tsvg` did not finish within 0.5 s and was stopped: draw "
                               "fewer nodes (depth=N collapses nested blocks) or raise dot_timeout")
    assert isinstance(info.value, GraphvizFailed) and target.read_text() == "keep me"


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), "1", True, None])
def test_dot_timeout_is_checked_before_drawing(tmp_path, value):
    with pytest.raises(ArgumentError, match="^dot_timeout: expected a number of seconds > 0") as info:
        write_graph(analyze("lenet"), tmp_path / "lenet.svg", dot_timeout=value)
    assert info.value.param == "dot_timeout" and list(tmp_path.iterdir()) == []


def test_a_drawing_made_by_draw_keeps_its_time_limit(tmp_path, hanging_dot):
    drawing = analyze("lenet").draw(dot_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(GraphvizTimeout, match="within 0.5 s"):
        drawing.save(tmp_path / "lenet.svg")
    assert time.monotonic() - started < 10 and not (tmp_path / "lenet.svg").exists()
    with pytest.raises(ArgumentError, match="^dot_timeout"):
        analyze("lenet").draw(dot_timeout=0).save(tmp_path / "x.svg")
