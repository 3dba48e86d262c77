"""The output formats: one registry, name → function, behind ``show --format``, ``graph
--format``, ``report`` and the library's ``Analysis.render``.

A format is one function in one file: decorate it with :func:`renderer` in any module of the
``shapecalc.output`` package and it appears in the commands its ``commands`` names, in their
``--help``, in suffix detection for ``-o FILE`` and in ``Analysis.render(name)``.

The table itself is :mod:`shapecalc.core.registry` (``Analysis.render`` looks formats up
there, so the core never imports a renderer); this module adds writing to files and
:func:`discover`, which imports every module of ``shapecalc.output`` on the first lookup.
Renderer modules keep heavy libraries (rich, graphviz) inside their functions so that
discovery stays cheap (``tests/test_renderers.py`` checks it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shapecalc.core.safetext import printable
from shapecalc.core.fileio import OutputError, check_target, write_bytes, write_stdout, write_text
from shapecalc.core.registry import (  # noqa: F401  (_REGISTRY: tests add and remove formats)
    _REGISTRY, DIAGNOSIS, SCAN, Renderer, all_renderers, get, names, render, renderer,
)


def discover() -> None:
    """Import every module of ``shapecalc.output``, whose decorators fill the registry (the
    package's ``__init__`` hands this to :func:`~shapecalc.core.registry.find_renderers_with`)."""
    import importlib

    from shapecalc import output as package

    folder = Path(package.__file__).parent
    for module in sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")):
        importlib.import_module(f"{package.__name__}.{module}")


def for_output(path: str | None, fmt: str | None, command: str, *, path_param: str = "path",
               format_param: str = "format", default: str | None = None) -> Renderer:
    """The format for writing to ``path`` (``None`` or ``-``: standard output): ``fmt`` when
    given (it must agree with the file's suffix), else the suffix, else ``default``."""
    if path not in (None, "-"):  # a folder, FIFO, link or missing folder: say that, not "suffix"
        check_target(path, path_param)
    by_suffix = {s: r for r in all_renderers().values() if command in r.commands for s in r.suffixes}
    suffix = Path(path).suffix.lower().lstrip(".") if path not in (None, "-") else ""
    if fmt is not None:
        chosen = get(fmt, command, format_param)
        if suffix in by_suffix and by_suffix[suffix] is not chosen:
            raise OutputError.of(format_param, f"{fmt} does not match the file name "
                                 f"{Path(path).name!r}; change one of them", path)
        return chosen
    if suffix in by_suffix:
        return by_suffix[suffix]
    if path in (None, "-") and default is not None:
        return get(default, command, format_param)
    known = ", ".join("." + s for s in by_suffix)
    raise OutputError.of(path_param, f"cannot tell the format from {Path(path or '-').name!r}; use a "
                         f"{known} suffix or give the format", path)


def write(analysis, fmt: Renderer, path: str | None, *, param: str = "path",
          **options: Any) -> str:
    """Render and write to ``path`` atomically (``None``/``-``: standard output); options the
    format does not take are dropped. Returns where it went (``"-"`` for standard output).

    The target is checked before the (possibly slow) rendering, so a bad path fails at once.
    """
    to_stdout = path in (None, "-")
    if not to_stdout:
        check_target(path, param)
    data = fmt(analysis, **fmt.accepted(options))
    if isinstance(data, str):
        # Names come from anyone's files: no control, bidi or lone surrogate reaches the file.
        data = printable(data)
        if not data.endswith("\n"):
            data += "\n"  # text ends its last line, on a terminal and in a file
    if to_stdout:
        write_stdout(data, param)
        return "-"
    if isinstance(data, bytes):
        write_bytes(path, data, param)
    else:
        write_text(path, data, param)
    return str(path)


__all__ = ["DIAGNOSIS", "Renderer", "SCAN", "all_renderers", "discover", "for_output", "get", "names", "render",
           "renderer", "write"]
