"""Adversarial suite, fuzz: every option of every command, given hostile values, ends with a
known exit status, at most one line on stderr (``shapecalc: error: …``) and no traceback.

The options are read from the commands themselves, so a new flag is fuzzed without being
listed here. Runs in-process (``cli.main``) so that hundreds of examples cost seconds; the
time bound is hypothesis' deadline, generous enough for a loaded CI machine (the attacks this
replaces took minutes). ``train`` always names a model that does not exist, so its values are
parsed and checked, and nothing is trained.
"""

from __future__ import annotations

import io
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from datetime import timedelta

import click
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from shapecalc.cli import cli, main

HOSTILE_TEXT = [
    "", " ", "0", "-0", "+3", "1_000", "0x10", "٢٢٤", "３", "²", "1e308", "nan", "inf", "-inf",
    "-1", "18446744073709551616", "9" * 31, "1" * 5000, "224x224", "1x1x20000x20000",
    "1x3x224x224", "\x1b]0;pwn\x07", "a\u202eb", "\udc80", "=cmd|' /C calc'!A0", "@SUM(A1)",
    "../../etc/passwd", "/dev/zero", "-", "x" * 300, "3.5", "1e-3", "True", "null",
]
PATHS = ["-", "out.svg", "out.dot", "out.csv", "no/such/folder/out.png", "/dev/full", "out.html",
         "net:v3.json", ".", "out"]
PATH_OPTIONS = {"--graph", "-o", "--out", "--data-dir", "--resume"}
MODELS = {"show": "lenet", "check": "lenet", "graph": "lenet", "report": "lenet"}
COMMANDS = ["layer", "show", "check", "graph", "report", "train"]


def _options(name: str) -> list[click.Option]:
    command = cli.get_command(click.Context(cli), name)
    return [p for p in command.params if isinstance(p, click.Option) and p.opts[0] != "--help"]


def _value(option: click.Option) -> st.SearchStrategy[str]:
    if option.opts[0] in PATH_OPTIONS:
        return st.sampled_from(PATHS)
    choices = [st.sampled_from(HOSTILE_TEXT), st.text(max_size=12),
               st.integers(-2**70, 2**70).map(str),
               st.floats(allow_nan=True, allow_infinity=True).map(repr)]
    if isinstance(option.type, click.Choice):
        choices.append(st.sampled_from(list(option.type.choices)))
    return st.one_of(choices)


@st.composite
def command_lines(draw) -> list[str]:
    name = draw(st.sampled_from(COMMANDS))
    options = _options(name)
    chosen = draw(st.lists(st.sampled_from(options), max_size=4, unique_by=lambda o: o.opts[0]))
    args = [name]
    if name == "layer":
        args.append(draw(st.one_of(st.sampled_from(HOSTILE_TEXT), st.just("224"))))
        if not any(o.opts[0] == "--k" for o in chosen):
            args += ["--k", "3"]
    elif name == "train":
        args += ["--model", "no-such-model-zzz"]
        chosen = [o for o in chosen if o.opts[0] not in ("--model", "--resume")]
    else:
        args.append(MODELS[name])
    for option in chosen:
        if option.opts[0] == "--verify":  # torch's import is timed elsewhere
            continue
        if option.is_flag:
            args.append(option.opts[0])
        else:
            args += [option.opts[0], draw(_value(option))]
    return args


def run_in_process(args: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(args)
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
        else:
            code = 0
    return code, err.getvalue()


@pytest.fixture
def in_tmp(tmp_path):
    before = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)


@settings(max_examples=int(os.environ.get("SHAPECALC_FUZZ_EXAMPLES", "150")),
          deadline=timedelta(seconds=60), derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(args=command_lines())
def test_every_flag_with_hostile_values_is_one_line_and_a_known_status(in_tmp, args):
    code, err = run_in_process(args)
    assert code in (0, 1, 2, 130), (args, code, err)
    assert "Traceback" not in err, (args, err)
    lines = [line for line in err.splitlines() if line.strip()]
    if code != 0:
        assert len(lines) == 1 and lines[0].startswith("shapecalc: "), (args, lines)
    else:  # success may say where it wrote a file, never more
        assert len(lines) <= 1 and all("written to" in line for line in lines), (args, lines)
    assert not any(0xD800 <= ord(c) <= 0xDFFF or c == "\x1b" for c in err), (args, err)


def test_the_fuzz_reaches_every_option_of_every_command():
    seen = {name: {o.opts[0] for o in _options(name)} for name in COMMANDS}
    assert all(seen.values()) and "--max-run-mb" in seen["show"] and "--threads" in seen["train"]
    assert sys.modules["shapecalc.cli"] is not None
