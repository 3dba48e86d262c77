"""The output formats: one registry, name → function, behind ``show --format``, ``graph
--format``, ``report`` and the library's ``Analysis.render``.

A format is one function in one file: decorate it with :func:`renderer` in any module of the
``shapecalc.output`` package and it appears in the commands its ``commands`` names, in their
``--help``, in suffix detection for ``-o FILE`` and in ``Analysis.render(name)``.

This module sits below ``graph.py`` (which delegates ``Analysis.render`` here) and knows the
renderers only by discovery: on the first lookup it imports every module of
``shapecalc.output``, whose decorators fill the registry. The core therefore never imports a
renderer, and renderer modules keep heavy libraries (rich, graphviz) inside their functions so
that discovery stays cheap (``tests/test_renderers.py`` checks both).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from shapecalc.core.safetext import printable
from shapecalc.core.fileio import OutputError, check_target, write_bytes, write_stdout, write_text


@dataclass(frozen=True, slots=True)
class Renderer:
    """One output format. ``function(analysis, **options)`` returns text (``str``), bytes
    (``binary``) or, for API-only formats, an object; ``commands`` are the CLI commands that
    offer it; ``suffixes`` pick it from an output file name; ``options`` are the keyword
    options the function takes (read from its signature)."""

    name: str
    function: Callable[..., Any]
    summary: str
    suffixes: tuple[str, ...] = ()
    binary: bool = False
    commands: tuple[str, ...] = ()
    options: frozenset[str] = frozenset()

    def __call__(self, analysis, **options: Any) -> Any:
        return self.function(analysis, **options)

    def accepted(self, options: dict[str, Any]) -> dict[str, Any]:
        """The subset of ``options`` this format uses: one command line's flags serve several
        formats (``show --explain --format csv``), so the others are dropped, not refused."""
        return {k: v for k, v in options.items() if k in self.options}


_REGISTRY: dict[str, Renderer] = {}
_discovered = False


def renderer(name: str, *, summary: str, suffixes: tuple[str, ...] = (), binary: bool = False,
             commands: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Register the decorated function as output format ``name`` (see the module docstring)."""

    def register(function: Callable) -> Callable:
        known = _REGISTRY.get(name)
        if known is not None and known.function.__qualname__ != function.__qualname__:
            raise ValueError(f"output format {name!r} is registered twice")
        params = list(inspect.signature(function).parameters.values())[1:]
        options = frozenset(p.name for p in params
                            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        _REGISTRY[name] = Renderer(name, function, summary, tuple(suffixes), binary,
                                   tuple(commands), options)
        return function

    return register


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    import importlib

    from shapecalc import output as package

    folder = Path(package.__file__).parent
    for module in sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")):
        importlib.import_module(f"{package.__name__}.{module}")
    _discovered = True


def all_renderers() -> dict[str, Renderer]:
    """Every registered format by name."""
    _discover()
    return dict(_REGISTRY)


def names(command: str | None = None) -> tuple[str, ...]:
    """The format names, or those a CLI ``command`` offers, in registration order."""
    return tuple(n for n, r in all_renderers().items() if command is None or command in r.commands)


def get(name: str, command: str | None = None, param: str = "format") -> Renderer:
    """The format called ``name`` (offered by ``command`` when given); an unknown name is an
    :class:`OutputError` naming ``param`` and the choices."""
    found = all_renderers().get(name.lower()) if isinstance(name, str) else None
    if found is None or (command is not None and command not in found.commands):
        choices = ", ".join(names(command))
        raise OutputError.of(param, f"expected one of {choices}, got {name!r}")
    return found


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


def render(analysis, name: str, **options: Any) -> Any:
    """``analysis`` in format ``name``; options the format does not take are a ``TypeError``."""
    return get(name)(analysis, **options)


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


__all__ = ["Renderer", "all_renderers", "for_output", "get", "names", "render", "renderer", "write"]
