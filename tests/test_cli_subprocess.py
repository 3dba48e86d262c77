"""The installed ``shapecalc`` console script and ``python -m shapecalc``, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.fixture
def run(console_script):
    """Run the real installed command (or ``python -m shapecalc`` with ``module=True``)."""

    def run_command(*args: str, module: bool = False) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "shapecalc", *args] if module else [console_script, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    return run_command


def test_layer_prints_54_with_the_arithmetic(run):
    result = run("layer", "--k", "11", "--s", "4", "--p", "2", "224")
    assert result.returncode == 0 and result.stderr == ""
    assert "output: 54" in result.stdout
    assert "floor((224 − 11 + 2 + 4) / 4) = floor(219 / 4) = 54" in result.stdout
    assert "\x1b[" not in result.stdout  # piped: no colour codes


def test_show_json_reproduces_the_seed(run):
    result = run("show", "alexnet", "--json")
    assert result.returncode == 0
    layers = json.loads(result.stdout)["layers"]
    sizes = [l["output_shape"][-1] for l in layers if l["type"] in ("Conv2d", "MaxPool2d", "Flatten", "Linear")]
    assert sizes == [54, 26, 26, 12, 12, 12, 12, 5, 6400, 4096, 4096, 10]


def test_python_dash_m_and_models(run):
    result = run("models", module=True)
    assert result.returncode == 0 and "alexnet" in result.stdout
    assert run("--version").stdout.strip().endswith("0.1.0")


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["layer", "--k", "y", "224"], 2, "--k/--kernel: 'y' is not an integer"),
        (["layer", "--k", "0", "224"], 2, "must be ≥ 1, got 0"),
        (["layer", "--k", "3", "224x-1"], 2, "must be ≥ 1, got -1"),
        (["layer", "--k", "3", "--p", "2", "--padding", "1", "224"], 2, "--p and --padding"),
        (["layer", "--k", "3", "--s", "2", "--same", "224"], 2, "--same"),
        (["show", "alexnt"], 2, "did you mean 'alexnet'"),
        (["show", "alexnet", "--input", "1x1x2a4x224"], 2, "--input"),
        (["show", "alexnet", "--input", "1x1x64x64"], 1, "smallest input that works is 65"),
    ],
)
def test_bad_inputs_one_line_no_traceback(args, code, words, run):
    result = run(*args)
    assert result.returncode == code
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert words in result.stderr
