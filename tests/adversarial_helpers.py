"""Running shapecalc as a hostile tester does: a subprocess with a memory ceiling and a short
time budget, so an attack that used to take minutes and gigabytes fails the test quickly
instead of taking the CI machine down with it."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: Address space a run may map: the interpreter, numpy and torch take ~1.5 GiB of it on import;
#: every attack in the suite used to need far more (2.9 GB to 4.8 TB).
MEMORY_CEILING = 3 * 2**30


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def _limits(memory: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    return apply


def shapecalc(*args: str, cwd: str | Path | None = None, timeout: float = 60,
              memory: int = MEMORY_CEILING, stdin=subprocess.DEVNULL,
              stdout=subprocess.PIPE, env: dict | None = None) -> Outcome:
    """``python -m shapecalc ARGS`` under ``memory`` bytes of address space; a run past
    ``timeout`` seconds fails the calling test (``subprocess.TimeoutExpired``)."""
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "shapecalc", *args], cwd=cwd, stdin=stdin,
                          stdout=stdout, stderr=subprocess.PIPE, timeout=timeout,
                          preexec_fn=_limits(memory), env=full_env)
    out = proc.stdout.decode("utf-8", "replace") if isinstance(proc.stdout, bytes) else ""
    return Outcome(proc.returncode, out, proc.stderr.decode("utf-8", "replace"))


def assert_one_line(outcome: Outcome, code: int, *words: str) -> str:
    """The run ended with ``code`` and one ``shapecalc: error:`` line holding every word."""
    assert outcome.code == code, (outcome.code, outcome.stderr[-2000:])
    assert "Traceback" not in outcome.stderr, outcome.stderr[-2000:]
    lines = outcome.error_lines
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("shapecalc: "), line
    for word in words:
        assert word in line, (word, line)
    return line
