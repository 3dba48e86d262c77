"""``shapecalc graph``: DOT on stdout, files through -o, one-line errors, and no torch import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from shapecalc.cli import main

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


def run(capsys, *args: str) -> tuple[int, str, str]:
    """The console entry point in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main(["graph", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return exc.value.code, out, err


def test_dot_goes_to_stdout(capsys):
    code, out, err = run(capsys, "lenet")
    assert code == 0 and err == ""
    assert out.startswith('digraph "lenet" {') and out.rstrip().endswith("}")
    assert "1×6×28×28" in out and "rankdir=TB" in out


def test_options_reach_the_drawing(capsys):
    _, out, _ = run(capsys, "resnet18", "--input", "2x3x64x64", "--rankdir", "lr", "--depth", "0")
    assert "rankdir=LR" in out
    assert "input 2×3×64×64" in out and "output 2×10" in out
    assert "subgraph" not in out  # depth 0: every top-level block is one node


def test_expand_draws_every_layer(capsys):
    _, out, _ = run(capsys, "resnet50", "--expand")
    assert "layer3.1.body.conv2" in out and out.count("tooltip=") == 175


def test_dot_file(tmp_path, capsys):
    target = tmp_path / "lenet.dot"
    code, out, err = run(capsys, "lenet", "-o", str(target))
    assert code == 0 and out == ""
    assert f"written to {target}" in err
    assert target.read_text(encoding="utf-8").startswith('digraph "lenet"')


@needs_dot
def test_svg_file_overwrites_what_the_user_named(tmp_path, capsys):
    target = tmp_path / "googlenet.svg"
    target.write_text("old")
    code, _, _ = run(capsys, "googlenet", "-o", str(target))
    assert code == 0
    root = ET.parse(target).getroot()
    assert root.tag.endswith("svg")
    assert [p.name for p in tmp_path.iterdir()] == ["googlenet.svg"]


@needs_dot
def test_png_with_explicit_format(tmp_path, capsys):
    target = tmp_path / "vgg11"
    code, _, _ = run(capsys, "vgg11", "-o", str(target), "--format", "png")
    assert code == 0 and target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,code,words", [
    (["lenet", "--format", "png"], 2, "give -o FILE"),
    (["lenet", "-o", "x.txt"], 2, "cannot tell the format"),
    (["lenet", "-o", "x.svg", "--format", "pdf"], 2, "does not match"),
    (["lenet", "--depth", "1", "--expand"], 2, "--depth and --expand"),
    (["lenet", "--rankdir", "BT"], 2, "--rankdir"),
    (["lenet", "--depth", "-1"], 2, "--depth"),
    (["lenet", "--input", "1x1xAx28"], 2, "--input"),
    (["lenet", "-o", "/nonexistent-dir/x.svg"], 2, "does not exist"),
    (["lenet", "--input", "1x1x2x2"], 1, "too small"),
    (["resnet5"], 2, "did you mean"),
])
def test_bad_input_is_one_line(capsys, args, code, words):
    got, out, err = run(capsys, *args)
    assert got == code
    assert len(err.strip().splitlines()) == 1, err
    assert words in err


def test_mismatched_input_channels_are_one_line(capsys):
    got, _, err = run(capsys, "resnet50", "--input", "1x1x224x224")
    assert got == 1
    assert "node 'conv1'" in err and "expects 3 input channels, got 1" in err


def test_missing_dot_in_a_real_process(tmp_path):
    # A PATH without Graphviz, as on a fresh machine: one line, exit 1, no file, no torch.
    env = {**os.environ, "PATH": str(tmp_path / "empty")}
    code = ("import sys; from shapecalc.cli import main\n"
            "try:\n    main(sys.argv[1:])\n"
            "finally:\n    print('torch' in sys.modules, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code, "graph", "lenet", "-o", str(tmp_path / "l.svg")],
                          env=env, capture_output=True, text=True, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1
    assert lines[0].startswith("shapecalc: error: writing SVG needs Graphviz's `dot`")
    assert "apt-get install graphviz" in lines[0] and "--format dot" in lines[0]
    assert lines[1] == "False"  # drawing never imports torch
    assert not (tmp_path / "l.svg").exists()
