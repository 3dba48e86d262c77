"""Shared fixtures and the hypothesis profiles (``ci``: 500 examples a property)."""

from __future__ import annotations

import os
import runpy
import shutil
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=500, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=60, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

REPO = Path(__file__).resolve().parent.parent

# PyPI's torchvision (imported by timm and transformers) beside the CPU torch: see
# tests/cpu_torchvision/sitecustomize.py. In-process here; subprocesses get it from PYTHONPATH.
_CPU_TORCHVISION = Path(__file__).resolve().parent / "cpu_torchvision"
runpy.run_path(str(_CPU_TORCHVISION / "sitecustomize.py"))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(_CPU_TORCHVISION), os.environ.get("PYTHONPATH")) if p)
# Beside the checkout by default; a worktree elsewhere points at it with $SHAPECALC_TEST_DATA.
FASHION_MNIST = Path(os.environ.get("SHAPECALC_TEST_DATA")
                     or REPO.parent / "shared" / "data" / "fashion-mnist")


@pytest.fixture
def sigint_as_in_a_terminal():
    """SIGINT with Python's own handler for the test, as in a terminal: a suite started in the
    background by a non-interactive shell (``nohup … &``) inherits SIGINT ignored, and the
    Ctrl-C tests check that training gives back the handler it found."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    """The real Fashion-MNIST beside the checkout; tests that need it skip when it is absent."""
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real Fashion-MNIST not found at {FASHION_MNIST}")
    return FASHION_MNIST


@pytest.fixture(scope="session")
def console_script() -> str:
    """The installed ``shapecalc`` entry point beside this interpreter (skips when absent)."""
    here = Path(sys.executable).parent / "shapecalc"
    found = str(here) if here.exists() else shutil.which("shapecalc")
    if found is None:
        pytest.skip("the shapecalc console script is not installed")
    return found


class CliResult(NamedTuple):
    """What one in-process run of the console entry point gave: exit status, stdout, stderr."""

    code: int
    out: str
    err: str

    @property
    def stdout(self) -> str:
        """The output of a run that must succeed (exit 0)."""
        assert self.code == 0, self.err
        return self.out

    @property
    def error(self) -> tuple[int, str]:
        """(exit status, the one stderr line) of a run that must fail with exactly one line."""
        assert self.code != 0, self.out
        assert len(self.err.strip().splitlines()) == 1, self.err
        return self.code, self.err.strip()


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """``cli("check", "alexnet", ...)``: the console entry point (``shapecalc.cli.main``, with its
    one-line errors and exit statuses) run in-process inside click's ``CliRunner`` isolation.
    A Python traceback on stderr fails the test: every error must be one line."""
    from click.testing import CliRunner

    from shapecalc.cli import main

    def run(*argv: str) -> CliResult:
        with CliRunner().isolation() as (out, err, _):
            try:
                main(list(argv))
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
            sys.stdout.flush()
            sys.stderr.flush()
            result = CliResult(code, out.getvalue().decode("utf-8"), err.getvalue().decode("utf-8"))
        assert "Traceback" not in result.err, result.err
        return result

    return run


#: A training run small enough for the CPU: 3 steps of 64 an epoch at 65×65 on synthetic data.
TINY_RUN = dict(device="cpu", epochs=2, batch_size=64, lr=0.01, image_size=65, limit_train=192,
                limit_test=64, synthetic=True, threads=2)


def tiny_config(out=None, **changes):
    """The ``TrainConfig`` of a tiny run (:data:`TINY_RUN`), writing to ``out`` if given."""
    from shapecalc.train.config import TrainConfig

    return TrainConfig(**{**TINY_RUN, "out": str(out) if out else None, **changes})


def quiet_reporter():
    """A training reporter that prints nowhere."""
    import io

    from shapecalc.train.report import Reporter

    return Reporter(io.StringIO())


CHROMIUM = Path("/usr/bin/chromium")
#: Flags for a headless chromium that reaches nothing but the page it is given.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def chromium_missing() -> str | None:
    """Why Debian's chromium cannot be driven here (``None`` when it can)."""
    if not CHROMIUM.exists():
        return f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def chromium():
    """Debian's chromium, headless, driven by Playwright (its own browser download is never
    used). Skips where it is missing, except under CI=true, where `.ci/run` installs it and a
    missing browser must fail rather than pass silently."""
    missing = chromium_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
