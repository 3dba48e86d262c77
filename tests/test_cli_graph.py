"""``shapecalc graph``: DOT on stdout, files through -o, one-line errors, and no torch import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from shapecalc.cli import main

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


def test_dot_goes_to_stdout(cli):
    code, out, err = cli("graph", "lenet")
    assert code == 0 and err == ""
    assert out.startswith('digraph lenet {') and out.rstrip().endswith("}")
    assert "1×6×28×28" in out and "rankdir=TB" in out


def test_options_reach_the_drawing(cli):
    _, out, _ = cli("graph", "resnet18", "--input", "2x3x64x64", "--rankdir", "lr", "--depth", "0")
    assert "rankdir=LR" in out
    assert "input 2×3×64×64" in out and "output 2×10" in out
    assert "subgraph" not in out  # depth 0: every top-level block is one node


def test_expand_draws_every_layer(cli):
    _, out, _ = cli("graph", "resnet50", "--expand")
    assert "layer3.1.body.conv2" in out and out.count("tooltip=") == 175


def test_dot_file(tmp_path, cli):
    target = tmp_path / "lenet.dot"
    code, out, err = cli("graph", "lenet", "-o", str(target))
    assert code == 0 and out == ""
    assert f"written to {target}" in err
    assert target.read_text(encoding="utf-8").startswith('digraph lenet {')


@needs_dot
def test_svg_file_overwrites_what_the_user_named(tmp_path, cli):
    target = tmp_path / "googlenet.svg"
    target.write_text("old")
    code, _, _ = cli("graph", "googlenet", "-o", str(target))
    assert code == 0
    root = ET.parse(target).getroot()
    assert root.tag.endswith("svg")
    assert [p.name for p in tmp_path.iterdir()] == ["googlenet.svg"]


@needs_dot
def test_png_with_explicit_format(tmp_path, cli):
    target = tmp_path / "vgg11"
    code, _, _ = cli("graph", "vgg11", "-o", str(target), "--format", "png")
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
def test_bad_input_is_one_line(cli, args, code, words):
    got, out, err = cli("graph", *args)
    assert got == code
    assert len(err.strip().splitlines()) == 1, err
    assert words in err


def test_mismatched_input_channels_are_one_line(cli):
    got, _, err = cli("graph", "resnet50", "--input", "1x1x224x224")
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


# ---------------------------------------------------------------- outputs that cannot be damaged
def test_dash_writes_any_format_to_stdout(capfd):
    with pytest.raises(SystemExit) as exc:
        main(["graph", "lenet", "-o", "-"])
    out, err = capfd.readouterr()
    assert exc.value.code == 0 and out.startswith("digraph lenet {") and err == ""


@needs_dot
def test_dash_pipes_binary_formats(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "shapecalc", "graph", "lenet", "--format", "png", "-o", "-"],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout[:8] == b"\x89PNG\r\n\x1a\n", proc.stderr


def _refused(cli, target, words):
    code, out, err = cli("graph", "lenet", "-o", str(target))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("shapecalc: error: -o: ") and words in err


def test_a_fifo_is_refused_not_replaced(tmp_path, cli):
    fifo = tmp_path / "g.dot"
    os.mkfifo(fifo)
    _refused(cli, fifo, "not a regular file")
    assert fifo.is_fifo()


def test_a_symlink_is_refused_and_its_target_kept(tmp_path, cli):
    real = tmp_path / "real.dot"
    real.write_text("keep")
    link = tmp_path / "g.dot"
    link.symlink_to(real)
    _refused(cli, link, "symbolic link")
    assert link.is_symlink() and real.read_text() == "keep"


def _as_non_root(monkeypatch, read_only):
    """Root may write anything, and CI runs as root: let ``os.access`` answer as for a user."""
    import shapecalc.core.fileio as fileio

    real = os.access
    monkeypatch.setattr(fileio.os, "access", lambda p, mode, **kw: (
        False if Path(p) == read_only and mode & os.W_OK else real(p, mode, **kw)))


def test_a_read_only_file_stays_read_only_and_unchanged(tmp_path, cli, monkeypatch):
    target = tmp_path / "g.dot"
    target.write_text("keep")
    target.chmod(0o444)
    _as_non_root(monkeypatch, target)
    _refused(cli, target, "read-only")
    assert target.read_text() == "keep" and (target.stat().st_mode & 0o777) == 0o444


def test_a_folder_and_a_missing_folder_are_refused(tmp_path, cli):
    _refused(cli, tmp_path, "is a folder")
    _refused(cli, tmp_path / "missing" / "g.dot", "does not exist")
    (tmp_path / "file.dot").write_text("")
    _refused(cli, tmp_path / "file.dot" / "g.dot", "is a file, not a folder")


def test_a_read_only_folder_is_refused(tmp_path, cli, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    _as_non_root(monkeypatch, folder)
    try:
        _refused(cli, folder / "g.dot", "not writable")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_disk_full_while_writing_keeps_the_old_file(tmp_path, cli, monkeypatch):
    import errno

    import shapecalc.core.fileio as fileio

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "g.dot"
    target.write_text("keep")
    monkeypatch.setattr(fileio.os, "fsync", full)
    code, _, err = cli("graph", "lenet", "-o", str(target))
    assert code == 1 and len(err.strip().splitlines()) == 1  # the work failed, not the usage
    assert "-o: cannot write" in err and "no space left on the device" in err
    assert target.read_text() == "keep" and [p.name for p in tmp_path.iterdir()] == ["g.dot"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
@pytest.mark.parametrize("args", [["graph", "lenet", "-o", "-"], ["graph", "lenet"],
                                  ["show", "lenet", "--format", "csv"], ["show", "lenet"],
                                  ["layer", "--k", "3", "224"], ["check", "lenet"]])
def test_stdout_on_a_full_disk_is_one_line(args):
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "shapecalc", *args], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 1  # the work failed; the command line was fine
    assert proc.stderr.strip() == ("shapecalc: error: cannot write to standard output: "
                                   "no space left on the device")


def test_a_closed_pipe_ends_quietly():
    # `| head -c 10`: the reader goes away mid-drawing; no traceback, the same status each time.
    codes = set()
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-m", "shapecalc", "graph", "resnet50", "--expand"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout.read(10) == b"digraph re"
        proc.stdout.close()
        err = proc.stderr.read().decode()
        codes.add(proc.wait(timeout=120))
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    assert len(codes) == 1


def test_dot_rejecting_the_drawing_fails_the_command(tmp_path, cli, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dot").write_text("#!/bin/sh\nwhile read -r line; do :; done\n"
                              "echo 'Error: <stdin>: syntax error in line 3' >&2\nexit 1\n")
    (fake / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    code, out, err = cli("graph", "lenet", "-o", str(tmp_path / "l.svg"))
    assert code == 1 and out == ""
    assert err.strip() == "shapecalc: error: Graphviz `dot` failed: Error: <stdin>: syntax error in line 3"
    assert not (tmp_path / "l.svg").exists()


@needs_dot
def test_dot_running_too_long_is_stopped_with_one_line(tmp_path, cli):
    # ResNet-50 drawn layer by layer keeps a real `dot` busy far longer than a millisecond.
    target = tmp_path / "r50.svg"
    target.write_text("keep me")
    code, out, err = cli("graph", "resnet50", "--expand", "--dot-timeout", "0.001", "-o", str(target))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "`dot -Tsvg` did not finish within 0.001 s" in err
    assert "--depth N" in err and "raise --dot-timeout" in err
    assert target.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["r50.svg"]


@pytest.mark.parametrize("value", ["0", "-1", "nan", "soon"])
def test_dot_timeout_must_be_positive_seconds(cli, value):
    code, out, err = cli("graph", "lenet", "--format", "svg", "--dot-timeout", value)
    assert code == 2 and err.count("\n") == 1 and "--dot-timeout" in err


def test_a_two_input_model_draws_both_inputs(tmp_path, cli):
    pytest.importorskip("torch")
    source = tmp_path / "two.py"
    source.write_text(
        "import torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 4, 3)\n"
        "        self.emb = nn.Embedding(10, 4)\n"
        "    def forward(self, img, tokens):\n"
        "        return self.conv(img).mean(dim=(2, 3)) + self.emb(tokens).mean(dim=1)\n")
    code, out, err = cli("graph", f"{source}:Net", "--input", "1x3x8x8", "--input", "1x5:int64")
    assert code == 0, err
    assert 'label="tokens 1×5 int64"' in out and 'label="img 1×3×8×8"' in out
    assert "inputs img 1×3×8×8, tokens 1×5 int64" in out  # the title names both
    code, out, err = cli("graph", f"{source}:Net", "--input", "1x5:complex")
    assert code == 2 and out == "" and "--input: element type 'complex'" in err
