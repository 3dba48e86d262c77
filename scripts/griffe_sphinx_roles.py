"""A griffe extension for the API reference (mkdocs.yml loads it): the docstrings are written
for Sphinx-style readers (``:class:`~shapecalc.core.analysis.Analysis```, ``:func:`analyze```),
which mkdocstrings would print as raw roles. Each role becomes a code span with the name as a
reader would type it (the last dotted part when the target starts with ``~``)."""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):`(~?)([^`]+)`")


def _plain(match: re.Match) -> str:
    tilde, target = match.groups()
    target = target.lstrip(".")
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


class SphinxRoles(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_plain, obj.docstring.value)
