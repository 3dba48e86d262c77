"""Model loading goes one way: api → sources → torch_bridge.fx_import → model_source, with no
module importing back up, not even lazily inside a function (issue 10's "round in a circle").

Imports are read from the source (every ``import``/``from … import`` anywhere in a module,
except under ``if TYPE_CHECKING:``), so a lazy import that closes a cycle fails here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "shapecalc"

#: The loading path and its neighbours: none of them may sit on an import cycle.
LOADING = ("shapecalc.models.api", "shapecalc.models.sources", "shapecalc.models.model_source", "shapecalc.diagnose",
           "shapecalc.diagnose.input_scan", "shapecalc.diagnose.size_search", "shapecalc.diagnose.fixes",
           "shapecalc.torch_bridge", "shapecalc.torch_bridge.fx_import",
           "shapecalc.torch_bridge.fx_convert", "shapecalc.torch_bridge.fx_common",
           "shapecalc.torch_bridge.build", "shapecalc.cli.check")


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


def test_model_loading_has_no_import_cycle():
    known = modules()
    edges = {name: imports(name, path, known) for name, path in known.items()}
    assert "shapecalc.models.sources" in edges["shapecalc.models.api"]
    assert "shapecalc.torch_bridge.fx_import" in edges["shapecalc.models.sources"]  # lazily, in a function
    for name in LOADING:
        assert cycle_through(name, edges) is None, " → ".join(cycle_through(name, edges))


def test_the_detector_sees_lazy_imports(tmp_path):
    pkg = tmp_path / "shapecalc"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def f():\n    from .a import y\n")
    known = {"shapecalc.a": pkg / "a.py", "shapecalc.b": pkg / "b.py"}
    edges = {n: imports(n, p, known) for n, p in known.items()}
    assert cycle_through("shapecalc.a", edges) == ["shapecalc.a", "shapecalc.b", "shapecalc.a"]
