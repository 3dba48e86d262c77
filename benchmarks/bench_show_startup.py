"""Whole-process time of ``shapecalc show MODEL``: this checkout against another, piped and on
a terminal, so a change to the table can be checked for start-up cost before it lands.

Both checkouts run as fresh ``python -m shapecalc`` processes, interleaved (machine load hits
both alike) after an untimed warm-up that fills their bytecode caches; medians are printed
with their ratio. ``piped`` writes to a pipe (plain text, no rich); ``terminal`` runs on a
pseudo-terminal of ``--columns`` columns (colours through rich, the table fitted).

Run: ``python benchmarks/bench_show_startup.py --baseline /path/to/other/checkout [--runs 15]``
(without ``--baseline`` only this checkout is timed). Targets: no slower than the baseline
beyond noise (the medians' ratio within a few per cent).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def run_piped(env: dict[str, str], args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "shapecalc", *args], env=env, check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=env["SHAPECALC_BENCH_CWD"])
    return time.perf_counter() - start


def run_terminal(env: dict[str, str], args: list[str], columns: int) -> float:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "shapecalc", *args], stdin=slave,
                            stdout=slave, stderr=slave, env=env, close_fds=True,
                            cwd=env["SHAPECALC_BENCH_CWD"])
    os.close(slave)
    try:
        while True:
            try:
                if not os.read(master, 65536):
                    break
            except OSError:  # EIO once the child has closed the terminal
                break
    finally:
        os.close(master)
    if proc.wait() != 0:
        raise SystemExit(f"shapecalc {' '.join(args)} failed on the terminal")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, default=None, help="another shapecalc checkout")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--columns", type=int, default=80)
    parser.add_argument("args", nargs="*", default=["show", "alexnet"])
    opts = parser.parse_args()
    checkouts = {"this": HERE}
    if opts.baseline is not None:
        checkouts["baseline"] = opts.baseline.resolve()
    envs = {}
    for name, root in checkouts.items():
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPATH"] = str(root)
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix=f"shapecalc-bench-{name}-")
        env["TERM"] = "xterm-256color"
        # `python -m` puts the working directory first on sys.path: run from an empty one,
        # so each process imports the checkout its PYTHONPATH names.
        env["SHAPECALC_BENCH_CWD"] = tempfile.mkdtemp(prefix="shapecalc-bench-cwd-")
        envs[name] = env
        run_piped(env, opts.args)  # warm-up: bytecode and file caches
        run_terminal(env, opts.args, opts.columns)
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(opts.runs):
        for name, env in envs.items():
            times.setdefault((name, "piped"), []).append(run_piped(env, opts.args))
            times.setdefault((name, "terminal"), []).append(
                run_terminal(env, opts.args, opts.columns))
    print(f"shapecalc {' '.join(opts.args)}: {opts.runs} runs each, medians "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    for how in ("piped", "terminal"):
        medians = {name: statistics.median(times[(name, how)]) for name in envs}
        row = "  ".join(f"{name} {ms * 1000:6.0f} ms" for name, ms in medians.items())
        ratio = (f"  ratio this/baseline {medians['this'] / medians['baseline']:.3f}"
                 if "baseline" in medians else "")
        print(f"{how:9} {row}{ratio}")


if __name__ == "__main__":
    main()
