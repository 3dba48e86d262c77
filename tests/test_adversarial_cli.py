"""Adversarial suite, command line: values that used to end in a traceback, a hang or a
gigabyte end in one line and a known exit status (issue 21)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from adversarial_helpers import assert_one_line, shapecalc


@pytest.mark.parametrize("args", [["show", "lenet"], ["layer", "--k", "3", "224"],
                                  ["check", "lenet"]])
def test_a_closed_stdout_is_one_line_and_exit_1(args):
    def close_stdout() -> None:
        os.close(1)

    proc = subprocess.run(["python", "-m", "shapecalc", *args], stdin=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=120, preexec_fn=close_stdout)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == "shapecalc: error: cannot write to standard output: it is closed"


def test_a_layer_type_that_is_a_list_is_one_line(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps({"input": [1, 3, 8, 8],
                                                 "layers": [{"type": ["Conv2d"]}]}))
    outcome = shapecalc("show", "t.json", cwd=tmp_path)
    assert_one_line(outcome, 2, "layers[0].type", "expected a layer name")


def test_a_huge_stride_and_target_is_one_line():
    outcome = shapecalc("layer", "--k", "3", "--s", "10000000000", "--target", "10000000000", "224")
    assert_one_line(outcome, 2, "--s/--stride: stride must be ≤ 2,147,483,647", "10000000000")
    outcome = shapecalc("layer", "--k", "3", "--s", "2147483647", "--target", "2147483647", "224")
    assert_one_line(outcome, 2, "--target: padding must be ≤ 2,147,483,647")
    outcome = shapecalc("layer", "--k", "3000000000", "224")
    assert_one_line(outcome, 2, "--k/--kernel: kernel size must be ≤ 2,147,483,647")


def test_third_party_warnings_do_not_reach_stderr(tmp_path):
    (tmp_path / "warn.py").write_text(
        "import warnings\nimport torch.nn as nn\n\n"
        "def make():\n    warnings.warn('third party noise', UserWarning)\n    return nn.Linear(4, 2)\n")
    outcome = shapecalc("show", "warn.py:make", "--input", "1x4", cwd=tmp_path, timeout=120)
    assert outcome.code == 0 and outcome.stderr == ""
    shown = shapecalc("show", "warn.py:make", "--input", "1x4", cwd=tmp_path, timeout=120,
                      env={"PYTHONWARNINGS": "default"})
    assert "third party noise" in shown.stderr


@pytest.mark.parametrize("args", [("show", "lenet", "--input", "0x10"),
                                  ("layer", "--k", "3", "0x10")])
def test_a_hexadecimal_looking_size_is_refused_saying_how_it_was_read(args):
    # issue 21: "0x10" is the two sizes 0 and 10 ('x' separates sizes), never 16; 0 is refused
    outcome = shapecalc(*args)
    flag = "--input" if "--input" in args else "SIZE"
    assert_one_line(outcome, 2, f"{flag}: must be ≥ 1, got 0", "is read as the sizes 0 and 10",
                    "'x' separates sizes")


def test_an_upper_case_hexadecimal_size_is_not_an_integer():
    assert_one_line(shapecalc("show", "lenet", "--input", "0X10"), 2,
                    "--input: '0X10' is not an integer written with the digits 0-9")
