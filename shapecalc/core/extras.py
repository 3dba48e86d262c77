"""What to install when an optional dependency (torch, matplotlib, PyYAML, timm, transformers) is missing: one place.

The hint depends on where the user is. In a source checkout (``pyproject.toml`` beside the
package) the project's own extra installs everything at pinned-compatible versions:
``pip install -e ".[train]"``. Anywhere else the plain packages are named
(``pip install torch matplotlib``): the name ``shapecalc`` on PyPI belongs to an unrelated
project, so no message ever asks pip for the package by that name.

This module imports nothing heavy; :func:`require` imports the dependency only when asked.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

from shapecalc.core.errors import SpecError

#: extra name → the packages it brings (the runtime part of pyproject.toml's extras).
EXTRAS = {
    "torch": ("torch", "numpy"),
    "train": ("torch", "numpy", "matplotlib"),
    "yaml": ("pyyaml",),
    "models": ("torch", "numpy", "timm", "transformers"),
}
#: import name → the distribution to install when it is missing.
DISTRIBUTIONS = {"torch": "torch", "matplotlib": "matplotlib", "yaml": "pyyaml", "numpy": "numpy",
                 "timm": "timm", "transformers": "transformers"}


class MissingDependency(SpecError):
    """An optional package this feature needs is not installed; the message says how to get it.

    A :class:`SpecError` because, like a bad spec, it means "this model could not be loaded"
    (exit 1 from the CLI; ``check`` maps it with its other load failures)."""

    def __init__(self, message: str, *, package: str) -> None:
        super().__init__(message)
        self.package = package


def checkout_root() -> Path | None:
    """The source checkout shapecalc runs from (its ``pyproject.toml`` names it), else ``None``."""
    root = Path(__file__).resolve().parents[2]
    project = root / "pyproject.toml"
    try:
        text = project.read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "shapecalc"' in text else None


def install_command(extra: str) -> str:
    """The one command that installs ``extra``'s packages from where the user is."""
    root = checkout_root()
    if root is not None:
        try:
            where = os.path.relpath(root)
        except ValueError:  # another drive on Windows
            where = str(root)
        return f'pip install -e "{where}[{extra}]"'
    packages = [p for p in EXTRAS[extra] if p != "numpy"]  # torch pulls numpy in itself
    return "pip install " + " ".join(packages)


def missing(what: str, package: str = "torch", extra: str = "torch") -> MissingDependency:
    """The one-line error for ``what`` (e.g. "shapecalc train") needing an absent ``package``."""
    name = {"torch": "PyTorch", "yaml": "PyYAML"}.get(package, package)
    return MissingDependency(f"{what} needs {name}, which is not installed: {install_command(extra)}",
                             package=package)


def require(package: str, what: str, extra: str | None = None) -> ModuleType:
    """Import ``package`` or raise :func:`missing`'s one line (``extra`` defaults to the package's)."""
    try:
        return importlib.import_module(package)
    except ImportError as err:
        if err.name is not None and err.name.split(".")[0] != package.split(".")[0]:
            raise  # the package is there but one of *its* imports is broken: show the real error
        raise missing(what, package, extra or package) from None


def missing_from_import(err: ImportError, what: str) -> MissingDependency | None:
    """For a user's file that failed on ``import torch``: the install line, else ``None``."""
    top = (err.name or "").split(".")[0]
    if top == "torch":
        return missing(what, "torch", "torch")
    return None


__all__ = ["EXTRAS", "MissingDependency", "checkout_root", "install_command", "missing",
           "missing_from_import", "require"]
