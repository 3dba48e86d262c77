"""Exit statuses mean one thing for every command (0 done/fits, 1 does not fit, 2 usage or a
model that could not be loaded), and a closed stdout ends quietly with the command's answer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def shapecalc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shapecalc", *args], capture_output=True,
                          text=True, timeout=120, env=ENV, cwd=cwd)


def piped(command: str, reader: str, cwd: Path) -> tuple[int, str]:
    """Run ``shapecalc COMMAND | READER`` in a shell; the writer's status and its stderr."""
    script = (f"{sys.executable} -m shapecalc {command} 2>err.txt | {reader} >/dev/null; "
              "echo ${PIPESTATUS[0]}")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                          env=ENV, cwd=cwd)
    return int(done.stdout.strip()), (cwd / "err.txt").read_text()


@pytest.mark.parametrize("args, code", [
    (["check", "alexnet"], 0),
    (["check", "alexnet", "--input", "1x1x64x64"], 1),
    (["check", "alexnet", "--input-range", "10..20"], 1),
    (["check", "alexnett"], 2),
    (["check", "missing.json"], 2),
    (["check", "missing.py:Net"], 2),
    (["check", "os:system('true')"], 2),
    (["check", "alexnet", "--input", "1x1x0x4"], 2),
    (["show", "alexnet", "--input", "1x1x64x64"], 1),
    (["show", "alexnett"], 2),
    (["show", "broken.py:Net"], 2),
    (["graph", "alexnett"], 2),
    (["layer", "--k", "3", "--s", "0", "8"], 2),
    (["layer", "--k", "30", "20"], 1),
    (["nonsense"], 2),
])
def test_statuses_mean_one_thing(tmp_path, args, code):
    (tmp_path / "broken.py").write_text("def (:\n")
    done = shapecalc(*args, cwd=tmp_path)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    if code and not (args[0] == "check" and code == 1):  # check's "does not fit" is its answer
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("shapecalc: error: ")


@pytest.mark.parametrize("command, answer", [
    ("check alexnet", 0),
    ("check alexnet --input 1x1x1x1", 1),
    ("show resnet50", 0),  # more than a pipe buffer: the write itself meets the closed pipe
    ("--help", 0),
])
@pytest.mark.parametrize("reader", ["head -c1", "true"])
def test_a_closed_pipe_is_quiet_and_keeps_the_answer(tmp_path, command, answer, reader):
    for _ in range(2):  # the same status whether the reader left early or late
        code, err = piped(command, reader, tmp_path)
        assert code == answer and err == "", (command, reader, err)
