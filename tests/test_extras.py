"""Without torch, every command that needs it says in one line what to install, from where the
user is; and no message ever names the unrelated PyPI project called shapecalc."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from shapecalc.core import extras

REPO = Path(__file__).resolve().parent.parent

NO_TORCH = """
import sys
sys.modules["torch"] = None  # `import torch` now fails as it does where torch is not installed
from shapecalc.cli import main
main({args!r})
"""

NET = "import torch\n\nclass Net(torch.nn.Module):\n    pass\n"


def test_install_command_in_a_checkout_and_elsewhere(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    assert extras.checkout_root() == REPO
    assert extras.install_command("train") == 'pip install -e ".[train]"'
    monkeypatch.chdir(tmp_path)
    assert re.fullmatch(r'pip install -e "\S+\[torch\]"', extras.install_command("torch"))
    monkeypatch.setattr(extras, "checkout_root", lambda: None)
    assert extras.install_command("train") == "pip install torch matplotlib"
    assert extras.install_command("torch") == "pip install torch"
    assert str(extras.missing("shapecalc train", extra="train")) == \
        "shapecalc train needs PyTorch, which is not installed: pip install torch matplotlib"


def test_require_names_the_missing_package_but_not_a_broken_one(monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(extras.MissingDependency, match="needs PyYAML, which is not installed"):
        extras.require("yaml", "reading YAML")
    assert extras.require("json", "x").dumps([]) == "[]"


@pytest.mark.parametrize("args", [
    ["train", "--synthetic", "--epochs", "1"],
    ["show", "alexnet", "--verify"],
    ["check", "net.py:Net", "--input", "1x1x28x28"],
    ["show", "net.py:Net"],
    ["graph", "net.py:Net"],
])
def test_commands_needing_torch_say_what_to_install_in_one_line(args, tmp_path):
    (tmp_path / "net.py").write_text(NET)
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", NO_TORCH.format(args=args)], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode in (1, 2), (proc.returncode, proc.stderr)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "needs PyTorch, which is not installed: pip install -e" in proc.stderr, proc.stderr
    assert "[train]" in proc.stderr if args[0] == "train" else "[torch]" in proc.stderr


def test_no_message_names_the_unrelated_pypi_shapecalc():
    """`pip install shapecalc...` would install someone else's geometry package."""
    pattern = re.compile(r"pip install (-U |--upgrade )?['\"]?shapecalc")
    files = [*sorted((REPO / "shapecalc").rglob("*.py")), REPO / "README.md", REPO / "pyproject.toml",
             *sorted((REPO / "docs").glob("*.md"))]
    offenders = [f"{p.relative_to(REPO)}:{n}" for p in files if p.exists()
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line)]
    assert not offenders, offenders
