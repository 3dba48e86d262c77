"""Every script in examples/ runs (in a fresh interpreter, as a reader would) and says what it
promises; an example that is added without an entry here still has to run cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: Lines (or fragments) each example must print.
EXPECTED = {
    "alexnet_layers.py": [
        "get_output_size(224, 11, 4, 2) = 54",
        "get_output_size(54, 3, 2, 0) = 26",
        "Conv2d output shape:\t torch.Size([1, 96, 54, 54])",
        "MaxPool2d output shape:\t torch.Size([1, 96, 26, 26])",
        "MaxPool2d output shape:\t torch.Size([1, 256, 5, 5])",
        "Flatten output shape:\t torch.Size([1, 6400])",
        "Linear output shape:\t torch.Size([1, 10])",
    ],
    "padding_solver.py": [
        "n=224 k=11 s=4 → 56: total p in [7, 8, 9, 10]; nn.Conv2d: padding=4, padding=5",
        "n=32 k=4 s=1 → 32: total p in [3]; nn.Conv2d: none (pad asymmetrically)",
        "n=224 k=11 s=4: no padding gives 40",
    ],
    "build_and_analyze.py": [
        "= floor((96 − 7 + 6 + 2) / 2) = floor(97 / 2) = 48",
        "Residual (collapsed)",
        "Total params: 39,242",
    ],
}

SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_every_expected_example_exists():
    assert set(EXPECTED) <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script):
    result = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True,
                            text=True, timeout=300, cwd=EXAMPLES.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "an example should show something"
    for fragment in EXPECTED.get(script, []):
        assert fragment in result.stdout, fragment


def test_alexnet_printout_has_one_line_per_layer():
    result = subprocess.run([sys.executable, str(EXAMPLES / "alexnet_layers.py")],
                            capture_output=True, text=True, timeout=300)
    lines = [l for l in result.stdout.splitlines() if "output shape:\t" in l]
    assert len(lines) == 21
    assert [l.split()[0] for l in lines[:3]] == ["Conv2d", "ReLU", "MaxPool2d"]


# ---------------------------------------------------------------- the README's promises
README = EXAMPLES.parent / "README.md"


def readme_text() -> str:
    if not README.exists():
        pytest.skip("no README.md")
    return README.read_text(encoding="utf-8")


VENV = "python3 -m venv .venv && . .venv/bin/activate && "


def test_readme_quick_start_is_the_ci_command():
    """Each quick-start line stands alone on a fresh machine: it makes and enters its venv."""
    text = readme_text()
    assert VENV + "pip install -e . && shapecalc show alexnet" in text
    command = (VENV + "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
               ' && pip install -e ".[test]" && python -m pytest')
    assert command in text
    # CI makes the same venv and installs the same pins and extra; only the index differs (CI's
    # pip holds torch's CPU wheel locally and cannot reach PyTorch's index), as .ci/run says.
    ci = (EXAMPLES.parent / ".ci" / "run").read_text().replace("pip install -q ", "pip install ")
    # CI adds the docs extra: it also builds the documentation site.
    for step in ("python3 -m venv .venv && . .venv/bin/activate", "pip install torch==2.13.0",
                 'pip install -e ".[test,docs]"', "\npython -m pytest\n"):
        assert step in ci, step

# The README's and docs/' examples themselves are run by tests/test_docs_examples.py.
