"""The renderer registry: name → function, for every way a result is shown.

The results (:class:`~shapecalc.core.analysis.Analysis`, a diagnosis) live below the renderers,
so they cannot import them: they look their formats up here by name, and the renderers (the
``shapecalc.output`` package) register themselves with :func:`renderer`. What fills the
registry on first lookup is handed in from above by :func:`find_renderers_with` (the package's
``__init__`` passes a function that imports every renderer module), so no module of this layer
imports a renderer, not even lazily.

A subject is what a format shows: ``"analysis"`` (``show --format``, ``Analysis.render``),
``"diagnosis"`` (``check``, the notebook's display of a ``Diagnosis``), ``"scan"`` (``check
--input-range``, an ``InputScan``) or ``"memory"``. Each has its own names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from shapecalc.core.bounds import Bound
from shapecalc.core.errors import ArgumentError
from shapecalc.core.safetext import preview

ANALYSIS = "analysis"
DIAGNOSIS = "diagnosis"
MEMORY = "memory"  # a training step's memory (shapecalc.core.memory.MemoryReport)
SCAN = "scan"  # which input sizes fit (shapecalc.diagnose.input_scan.InputScan)


@dataclass(frozen=True, slots=True)
class Renderer:
    """One output format. ``function(subject, **options)`` returns text (``str``), bytes
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

    def __call__(self, subject, **options: Any) -> Any:
        return self.function(subject, **options)

    def accepted(self, options: dict[str, Any]) -> dict[str, Any]:
        """The subset of ``options`` this format uses: one command line's flags serve several
        formats (``show --explain --format csv``), so the others are dropped, not refused."""
        return {k: v for k, v in options.items() if k in self.options}


#: The analysis formats by name (``_REGISTRY``), and every subject's table.
_REGISTRY: dict[str, Renderer] = {}
_SUBJECTS: dict[str, dict[str, Renderer]] = {ANALYSIS: _REGISTRY, DIAGNOSIS: {}, MEMORY: {}, SCAN: {}}
_finders: list[Callable[[], None]] = []
_found = False


def find_renderers_with(finder: Callable[[], None]) -> None:
    """Call ``finder`` once, before the first lookup, to register the renderers."""
    _finders.append(finder)


def renderer(name: str, *, summary: str, suffixes: tuple[str, ...] = (), binary: bool = False,
             commands: tuple[str, ...] = (), subject: str = ANALYSIS) -> Callable[[Callable], Callable]:
    """Register the decorated function as ``subject``'s output format ``name``."""

    def register(function: Callable) -> Callable:
        import inspect

        table = _SUBJECTS[subject]
        known = table.get(name)
        if known is not None and known.function.__qualname__ != function.__qualname__:
            raise ValueError(f"output format {name!r} is registered twice")
        params = list(inspect.signature(function).parameters.values())[1:]
        options = frozenset(p.name for p in params
                            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        table[name] = Renderer(name, function, summary, tuple(suffixes), binary,
                               tuple(commands), options)
        return function

    return register


def _find() -> None:
    global _found
    if _found:
        return
    for finder in _finders:
        finder()
    _found = True


def all_renderers(subject: str = ANALYSIS) -> dict[str, Renderer]:
    """Every registered format of ``subject`` by name."""
    _find()
    return dict(_SUBJECTS[subject])


def names(command: str | None = None) -> tuple[str, ...]:
    """The analysis format names, or those a CLI ``command`` offers, in registration order."""
    return tuple(n for n, r in all_renderers().items() if command is None or command in r.commands)


def get(name: str, command: str | None = None, param: str = "format") -> Renderer:
    """The analysis format called ``name`` (offered by ``command`` when given); an unknown name
    is an :class:`~shapecalc.core.fileio.OutputError` naming ``param`` and the choices."""
    found = all_renderers().get(name.lower()) if isinstance(name, str) else None
    if found is None or (command is not None and command not in found.commands):
        from shapecalc.core.fileio import OutputError

        choices = ", ".join(names(command))
        raise OutputError.of(param, f"expected one of {choices}, got {name!r}")
    return found


#: The options formats share, declared once (:class:`~shapecalc.core.bounds.Bound`): a wrong
#: type or a value out of range is an :class:`ArgumentError` naming the option, before any
#: renderer compares or multiplies it (``table(width=float("nan"))`` never returned).
OPTION_LIMITS: dict[str, Bound] = {
    "depth": Bound(int, 0, 2**31 - 1, optional=True),
    "width": Bound(int, 1, 100_000, optional=True, why="wider than any screen or page"),
    "indent": Bound(int, 0, 64, optional=True),
    "explain": Bound(bool), "expand": Bound(bool), "ops": Bound(bool),
    "dot_timeout": Bound(float, 0, 86_400, optional=True, above_low=True, why="a day"),
}


def check_options(options: dict[str, Any]) -> None:
    """Every option of :data:`OPTION_LIMITS` in ``options`` within its bound; ``columns`` a list
    of names."""
    for name, value in options.items():
        bound = OPTION_LIMITS.get(name)
        if bound is not None:
            bound.check(name, value)
    columns = options.get("columns")
    if columns is not None and (not isinstance(columns, (list, tuple))
                                or not all(isinstance(c, str) for c in columns)):
        raise ArgumentError("columns", f"expected a list of column names, got {preview(columns)}")


def render(analysis, name: str, **options: Any) -> Any:
    """``analysis`` in format ``name`` (an unknown one names ``fmt``); options are checked by
    :func:`check_options`, and options the format does not take are a ``TypeError``."""
    check_options(options)
    return get(name, param="fmt")(analysis, **options)


def show(subject: str, value: Any, name: str) -> Any:
    """``value`` (a ``subject``, such as a diagnosis) in its format ``name``."""
    return all_renderers(subject)[name](value)


__all__ = ["ANALYSIS", "DIAGNOSIS", "MEMORY", "OPTION_LIMITS", "SCAN", "Renderer", "check_options", "all_renderers", "find_renderers_with",
           "get", "names", "render", "renderer", "show"]
