"""The folders are the layers: every import in the package runs down ``shapecalc.LAYERS``.

Imports are read from the source, lazy ones inside functions included; only annotation-only
imports under ``if TYPE_CHECKING:`` are exempt. The whole package must also be free of import
cycles, within a layer too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import shapecalc

PACKAGE = Path(__file__).resolve().parents[1] / "shapecalc"
ROOT = PACKAGE.parent


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node except the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for target in candidates:
            # Importing a.b.c runs a/__init__ and a/b/__init__ first: edges to those too, except
            # to the importer's own parents (already initialised before it runs).
            parts = target.split(".")
            for i in range(2, len(parts) + 1):
                up = ".".join(parts[:i])
                if up in known and up != name and not name.startswith(up + "."):
                    out.add(up)
    return out


def cycle_through(start: str, edges: dict[str, set[str]]) -> list[str] | None:
    """A path start → … → start, if any."""
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in edges.get(node, ()):
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


def layer_of(module: str) -> int | None:
    """The index of the layer ``module`` belongs to; None for the top-level package itself."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] in ("__main__",):
        return None
    return shapecalc.LAYERS.index(parts[1])


def edges() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_module_lives_in_a_declared_layer():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py"]
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert folders == sorted(shapecalc.LAYERS)


def test_imports_run_down_the_layers():
    wrong = []
    for name, targets in edges().items():
        mine = layer_of(name)
        if mine is None:
            continue
        for target in targets:
            theirs = layer_of(target)
            if theirs is None or theirs > mine:
                wrong.append(f"{name} → {target}")
    assert not wrong, "imports against shapecalc.LAYERS:\n" + "\n".join(sorted(wrong))


def test_the_package_has_no_import_cycle():
    graph = edges()
    found = {name: cycle_through(name, graph) for name in graph}
    cycles = sorted(" → ".join(c) for c in found.values() if c)
    assert not cycles, "\n".join(cycles)


def test_the_readme_describes_the_declared_layers_in_order():
    text = (ROOT / "docs" / "how-it-is-built.md").read_text() if (ROOT / "docs" / "how-it-is-built.md").exists() \
        else (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)/` \|", text, flags=re.M)
    assert tuple(rows) == shapecalc.LAYERS


def test_every_module_is_named_with_its_job():
    """``docs/how-it-is-built.md`` names every module of every layer, each on its own line with
    what it does, and names no module that is gone."""
    text = (ROOT / "docs" / "how-it-is-built.md").read_text()
    section = text[text.index("## Every module and its one job"):]
    section = section[:section.index("\n## ", 1)]
    package = ROOT / "shapecalc"
    modules = {str(p.relative_to(package)) for p in package.rglob("*.py")
               if p.parent != package and p.name != "__init__.py" and "zoo" not in p.parts}
    named = set(re.findall(r"`((?:core|torch_bridge|models|diagnose|output|train|cli)/[\w/]+\.py)`", section))
    assert not modules - named, f"not named in docs/how-it-is-built.md: {sorted(modules - named)}"
    gone = {m for m in named if not (package / m).exists()}
    assert not gone, f"named there but gone: {sorted(gone)}"
    assert "`models/zoo/`" in section


def test_the_checker_sees_an_upward_lazy_import(tmp_path):
    pkg = tmp_path / "shapecalc"
    (pkg / "core").mkdir(parents=True)
    (pkg / "cli").mkdir()
    for init in (pkg / "__init__.py", pkg / "core" / "__init__.py", pkg / "cli" / "__init__.py"):
        init.write_text("")
    (pkg / "core" / "a.py").write_text("def f():\n    from shapecalc.cli import b\n")
    (pkg / "cli" / "b.py").write_text("")
    known = {"shapecalc.core.a": pkg / "core" / "a.py", "shapecalc.cli.b": pkg / "cli" / "b.py",
             "shapecalc.cli": pkg / "cli" / "__init__.py"}
    found = imports("shapecalc.core.a", known["shapecalc.core.a"], known)
    assert "shapecalc.cli.b" in found
    assert layer_of("shapecalc.cli.b") > layer_of("shapecalc.core.a")


def test_the_detector_sees_lazy_imports(tmp_path):
    pkg = tmp_path / "shapecalc"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def f():\n    from .a import y\n")
    known = {"shapecalc.a": pkg / "a.py", "shapecalc.b": pkg / "b.py"}
    edges = {n: imports(n, p, known) for n, p in known.items()}
    assert cycle_through("shapecalc.a", edges) == ["shapecalc.a", "shapecalc.b", "shapecalc.a"]
