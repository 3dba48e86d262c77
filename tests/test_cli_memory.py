"""``shapecalc memory``: the table, the JSON keys, refusals naming the flag, and no torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from shapecalc.cli import cli


def run(*args):
    return CliRunner().invoke(cli, ["memory", *args], standalone_mode=False, catch_exceptions=False)


def test_table_and_what_dominates():
    out = run("alexnet", "--batch", "128").output
    assert "saved activations" in out and "peak, training" in out
    assert "What dominates:" in out and "14 (Linear) holds" in out
    assert "memory-bound" in out and "Assumptions:" in out


def test_json_keys_are_the_issues():
    data = json.loads(run("alexnet", "--json", "--batch", "2", "--optimizer", "sgd").output)
    assert set(data["memory"]) >= {"parameters", "gradients", "optimizer_state",
                                   "saved_activations", "peak_train", "peak_eval"}
    assert data["batch"] == 2 and data["dtype"] == "float32" and data["optimizer"] == "sgd"
    assert data["memory"]["optimizer_state"] == 0
    assert set(data["layers"][0]["memory"]) == {"saved", "params", "grads", "optimizer"}
    assert data["roofline"]["device"] == "h100"


def _main(*args):
    return subprocess.run([sys.executable, "-m", "shapecalc", "memory", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args,flag", [
    (["--batch", "0"], "--batch"), (["--batch", "-1"], "--batch"),
    (["--batch", "99999999999999"], "--batch"), (["--device", "tpu"], "--device"),
    (["--optimizer", "lion"], "--optimizer"), (["--peak-flops", "0"], "--peak-flops"),
    (["--bandwidth", "-5"], "--bandwidth"), (["--amp", "--dtype", "bfloat16"], "--amp")])
def test_bad_input_is_one_line_naming_the_flag(args, flag):
    result = _main("alexnet", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0], result.stderr


def test_memory_of_a_zoo_model_imports_no_torch():
    code = ("import sys; from shapecalc.cli import main\n"
            "try:\n    main(['memory', 'resnet18', '--json'])\nexcept SystemExit: pass\n"
            "sys.stderr.write(str('torch' in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stderr.strip().endswith("False"), result.stderr
