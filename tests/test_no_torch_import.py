"""``import shapecalc``, ``shapecalc layer`` and ``shapecalc show`` never import torch.

Each check runs in a fresh interpreter, since the test process itself has torch loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import sys
code = 0
{body}
print("TORCH-LOADED" if "torch" in sys.modules else "TORCH-FREE", file=sys.stderr)
sys.exit(code)
"""

RUN_MAIN = """
from shapecalc.cli import main
try:
    main({args!r})
except SystemExit as exit:
    code = exit.code
"""


def probe(body: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE.format(body=body)],
                          capture_output=True, text=True, timeout=120)


def test_import_shapecalc_is_torch_free():
    result = probe("import shapecalc, shapecalc.torch_bridge\nshapecalc.analyze('alexnet')")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().endswith("TORCH-FREE")


@pytest.mark.parametrize("args", [
    ["layer", "--k", "11", "--s", "4", "--p", "2", "224"],
    ["layer", "--k", "3", "--target", "56", "224", "--json"],
    ["show", "alexnet"],
    ["show", "alexnet", "--json", "--explain"],
    ["show", "alexnet", "--input", "1x1x64x64"],  # the error path too
    ["models"],
    ["graph", "alexnet"],
    ["report", "alexnet", "-o", "-", "--no-graph"],
])
def test_commands_are_torch_free(args):
    result = probe(RUN_MAIN.format(args=args))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().endswith("TORCH-FREE"), result.stderr


@pytest.mark.parametrize("args", [["layer", "--k", "11", "--s", "4", "--p", "2", "224"],
                                  ["show", "alexnet"]])
def test_console_script_is_torch_free(args, console_script):
    # PYTHONPROFILEIMPORTTIME makes the real entry point list every module it imports.
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    result = subprocess.run([console_script, *args], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "shapecalc.cli" in imported  # the probe works
    assert not {m for m in imported if m == "torch" or m.startswith("torch.")}
