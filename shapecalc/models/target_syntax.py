"""The argument syntax of a Python target (``make_net(3, num_classes=10)``), read with :mod:`ast`
and ``ast.literal_eval`` only: a name, or a call with literal arguments. Nothing is evaluated, so
``make_net(__import__('os'))`` is refused rather than run. Shared by Python targets
(:mod:`.sources`) and ``timm:NAME(kwargs)`` (:mod:`.timm_models`).
"""

from __future__ import annotations

import ast
from typing import Any

from shapecalc.core.errors import SpecError


def parse_target(target: str) -> tuple[list[str], list[Any], dict[str, Any], bool]:
    """``"make_net(3, num_classes=10)"`` → (["make_net"], [3], {"num_classes": 10}, called=True)."""
    try:
        tree = ast.parse(target.strip(), mode="eval").body
    except SyntaxError as err:
        raise SpecError(f"cannot parse {target!r}: {err.msg}; expected Name or name(arg=value, ...)") from None
    called = isinstance(tree, ast.Call)
    func = tree.func if called else tree
    path = _dotted(func)
    if path is None:
        raise SpecError(f"{target!r}: expected a name like Net or make_net(num_classes=10)")
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    if called:
        for i, node in enumerate(tree.args):
            args.append(_literal(node, f"argument {i + 1}", target))
        for kw in tree.keywords:
            if kw.arg is None:
                raise SpecError(f"{target!r}: **kwargs is not allowed; write name=value")
            kwargs[kw.arg] = _literal(kw.value, kw.arg, target)
    return path, args, kwargs, called


def _dotted(node: ast.AST) -> list[str] | None:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else head + [node.attr]
    return None


def _literal(node: ast.AST, what: str, target: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        raise SpecError(
            f"{target!r}: {what} must be a literal (number, string, tuple, list, dict, True/False/None), "
            f"got {ast.unparse(node)!r}"
        ) from None


__all__ = ["parse_target"]
