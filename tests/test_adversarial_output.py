"""Adversarial suite, output: names written by someone hostile (terminal escapes, BEL, OSC,
bidi overrides, lone surrogates, spreadsheet formulas) reach no output raw, in any format,
on stdout, stderr or in a file (issue 21, "text that is safe to print")."""

from __future__ import annotations

import json
import re

import pytest

from adversarial_helpers import assert_one_line, shapecalc

RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
EVIL_NAME = "=c\x1b]0;title\x07\x1b[31mred\u202eRTL\udc80x\x9b"


@pytest.fixture
def evil_spec(tmp_path):
    spec = {"name": "m\x1b]8;;http://x\x07", "input": [1, 1, 8, 8], "layers": [
        {"type": "Conv2d", "name": EVIL_NAME, "out_channels": 2, "kernel_size": 3},
        {"type": "Flatten"}, {"type": "Linear", "out_features": 3, "name": "@fc"}]}
    # ensure_ascii keeps the lone surrogate writable; the file still holds it once decoded
    (tmp_path / "evil.json").write_text(json.dumps(spec))
    return tmp_path


def _clean(text: str) -> None:
    assert RAW.search(text) is None, RAW.search(text)
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@pytest.mark.parametrize("fmt", [[], ["--format", "csv"], ["--format", "markdown"], ["--json"],
                                 ["--format", "html"]])
def test_every_stdout_format_escapes_hostile_names(evil_spec, fmt):
    outcome = shapecalc("show", "evil.json", *fmt, cwd=evil_spec)
    assert outcome.code == 0, outcome.stderr
    _clean(outcome.stdout)
    assert "\\u202e" in outcome.stdout or "&#" in outcome.stdout or "u202e" in outcome.stdout


def test_json_output_still_holds_the_same_names(evil_spec):
    outcome = shapecalc("show", "evil.json", "--json", cwd=evil_spec)
    names = [layer["name"] for layer in json.loads(outcome.stdout)["layers"]]
    assert names[0] == EVIL_NAME


def test_csv_cells_that_start_a_formula_are_guarded(evil_spec):
    outcome = shapecalc("show", "evil.json", "--format", "csv", cwd=evil_spec)
    cells = [line.split(",")[1] for line in outcome.stdout.splitlines()[1:]]
    assert cells[0].startswith("'=") and cells[2] == "'@fc"


def test_errors_and_check_escape_hostile_names(evil_spec):
    outcome = shapecalc("show", "evil.json", "--input", "1x1x2x2", cwd=evil_spec)
    assert_one_line(outcome, 1, "RTL")
    _clean(outcome.stderr)
    outcome = shapecalc("check", "evil.json", "--input", "1x1x2x2", cwd=evil_spec)
    assert outcome.code == 1
    _clean(outcome.stdout + outcome.stderr)


@pytest.mark.parametrize("suffix", ["svg", "dot", "html"])
def test_written_files_escape_hostile_names(evil_spec, suffix):
    command = "report" if suffix == "html" else "graph"
    outcome = shapecalc(command, "evil.json", "-o", f"out.{suffix}", cwd=evil_spec)
    assert outcome.code == 0, outcome.stderr
    _clean(outcome.stderr)
    _clean((evil_spec / f"out.{suffix}").read_text(encoding="utf-8"))
