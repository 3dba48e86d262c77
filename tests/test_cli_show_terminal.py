"""``shapecalc show`` in a real pseudo-terminal: the table fits the terminal it is printed on.

The command runs as its own process with a pty as stdin/stdout/stderr, the window size set
with ``TIOCSWINSZ`` and no ``COLUMNS`` in the environment, so the width is found the way a
user's terminal gives it. Colours are stripped before lines are measured.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from shapecalc import analyze
from shapecalc.output.table import display_width

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def run_in_terminal(columns: int, *args: str, rows: int = 60) -> list[str]:
    """Run ``shapecalc ARGS`` on a ``columns``-wide pty; its output lines, colours removed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in os.environ.items()
           if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM_PROGRAM")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([sys.executable, "-m", "shapecalc", *args], stdin=slave,
                            stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        code = proc.wait(timeout=120)
    text = ANSI.sub("", b"".join(chunks).decode("utf-8")).replace("\r", "")
    assert code == 0, text
    return text.splitlines()


def assert_fits(lines: list[str], columns: int) -> None:
    too_wide = [line for line in lines if display_width(line) > columns]
    assert not too_wide, f"{len(too_wide)} line(s) wider than {columns}: {too_wide[:3]}"


def row_of(lines: list[str], description: str) -> str:
    """The first line holding ``description`` whole."""
    found = [line for line in lines if description in line]
    assert found, f"{description!r} is not on any line"
    return found[0]


def table_rows(lines: list[str]) -> list[str]:
    """The lines between the rule under the header and the footnotes / totals."""
    start = next(i for i, line in enumerate(lines) if line.startswith("──")) + 1
    end = next(i for i, line in enumerate(lines) if i >= start and
               (line.startswith("[") or line.startswith("Total params")))
    return lines[start:end]


def assert_one_line_per_row(lines: list[str], records) -> None:
    """Row i of the table is line i: its description whole, its output shape beside it."""
    rows = table_rows(lines)
    assert len(rows) == len(records), "rows were wrapped or lost"
    for line, rec in zip(rows, records):
        collapsed = " (collapsed)" if rec.is_block and "(collapsed)" in line else ""
        assert rec.description + collapsed in line
        assert "×".join(map(str, rec.output_shape)) in line.split()


@pytest.mark.parametrize("columns", [80, 120])
def test_alexnet_fits_the_terminal_one_row_a_line(columns):
    lines = run_in_terminal(columns, "show", "alexnet")
    assert_fits(lines, columns)
    result = analyze("alexnet")
    assert_one_line_per_row(lines, result.records)
    assert [line.split()[0] for line in table_rows(lines)] == [str(i) for i in range(21)]
    assert "Conv2d(1→96, k=11, s=4, p=1)" in row_of(lines, "Conv2d(1→96")
    header = next(line for line in lines if line.lstrip().startswith("#"))
    assert "name" not in header.split()  # a flat model's names repeat the index


def test_more_columns_on_a_wider_terminal():
    narrow = run_in_terminal(80, "show", "alexnet")
    wide = run_in_terminal(120, "show", "alexnet")
    head_80 = next(line for line in narrow if line.lstrip().startswith("#"))
    head_120 = next(line for line in wide if line.lstrip().startswith("#"))
    assert "input shape" not in head_80 and "input shape" in head_120
    assert "params %" in head_120
    # at 80 columns the notes are numbered footnotes under the table
    assert "[1] drops 3 px (H, W)" in narrow
    assert row_of(narrow, "Conv2d(1→96").endswith("[1]")
    # the exact counts come back where there is room for them
    assert "34,152,192" in row_of(wide, "Conv2d(1→96") and "34.2M" in row_of(narrow, "Conv2d(1→96")


@pytest.mark.parametrize("columns", [80, 120])
def test_resnet18_depth_1_fits(columns):
    lines = run_in_terminal(columns, "show", "resnet18", "--depth", "1")
    assert_fits(lines, columns)
    rows = list(analyze("resnet18").rows(1))
    assert_one_line_per_row(lines, rows)
    assert sum("(collapsed)" in line for line in table_rows(lines)) == 8
    assert any("├─b1" in line for line in lines)  # the tree keeps its names


def test_chosen_columns_in_a_terminal():
    lines = run_in_terminal(80, "show", "alexnet", "--columns", "kernel,output,trainable")
    assert_fits(lines, 80)
    header = next(line for line in lines if line.lstrip().startswith("#")).split()
    assert header == ["#", "layer", "kernel", "output", "shape", "trainable"]
    assert row_of(lines, "Conv2d(1→96, k=11, s=4, p=1)").split()[-3:] == ["11×11", "1×96×54×54", "yes"]


def test_piped_output_ignores_the_terminal_width():
    env = dict(os.environ)
    outputs = set()
    for cols in ("40", "80", "300"):
        env["COLUMNS"] = cols
        proc = subprocess.run([sys.executable, "-m", "shapecalc", "show", "alexnet"], env=env,
                              capture_output=True, text=True, timeout=120, check=True)
        outputs.add(proc.stdout)
    assert len(outputs) == 1
    text = outputs.pop()
    assert "in_features=6400 derived from the input" in text  # notes inline, full table
