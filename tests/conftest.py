"""Shared fixtures and the hypothesis profiles (``ci``: 500 examples a property)."""

from __future__ import annotations

import os
import runpy
import shutil
import sys
from pathlib import Path

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
