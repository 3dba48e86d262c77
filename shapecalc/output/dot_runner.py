"""Running Graphviz's ``dot``: bounded in time, and every way it can fail is one line.

``dot`` is run here rather than through the ``graphviz`` package's ``pipe()``, which takes no
time limit: a model of thousands of layers drawn with ``expand`` can keep ``dot`` busy for many
minutes, so it is stopped after :data:`DOT_TIMEOUT` seconds unless the caller raises that.
"""

from __future__ import annotations

from shapecalc.core.errors import ArgumentError, ShapecalcError
from shapecalc.core.safetext import preview

#: Seconds ``dot`` may take before it is stopped: ResNet-50 expanded draws in a few seconds, but
#: a model of thousands of layers drawn with ``expand`` can keep ``dot`` busy for many minutes.
DOT_TIMEOUT = 60.0

#: Why a rendering failed and how to fix it; each command adds its own way round it.
NO_DOT = ("Graphviz's `dot` program, which is not on PATH: install it with `apt-get install graphviz` "
          "(Debian/Ubuntu) or `brew install graphviz` (macOS)")


class GraphvizNotFound(ShapecalcError):
    """Rendering SVG/PNG/PDF needs Graphviz's ``dot`` program, which is not installed."""


class GraphvizFailed(ShapecalcError):
    """Graphviz's ``dot`` refused the drawing or crashed (its first error line is kept)."""


class GraphvizTimeout(GraphvizFailed):
    """Graphviz's ``dot`` ran past its time limit and was stopped.

    The message names the command, the limit and the ways out; ``fewer`` (how to draw fewer
    nodes) and ``limit`` word them as the caller knows them (the library's parameters, or a
    command's flags).
    """

    def __init__(self, command: str, seconds: float,
                 fewer: str = "depth=N collapses nested blocks", limit: str = "dot_timeout") -> None:
        self.command, self.seconds = command, seconds
        super().__init__(f"Graphviz `{command}` did not finish within {seconds:g} s and was stopped: "
                         f"draw fewer nodes ({fewer}) or raise {limit}")

    def for_flags(self, fewer: str, limit: str) -> "GraphvizTimeout":
        """The same error worded with a command's flags."""
        return GraphvizTimeout(self.command, self.seconds, fewer, limit)


def check_timeout(seconds: float, param: str = "dot_timeout") -> float:
    """``seconds`` as a positive, finite float, or :class:`ArgumentError` naming ``param``."""
    from numbers import Real

    if isinstance(seconds, bool) or not isinstance(seconds, Real) or not 0 < seconds < float("inf"):
        raise ArgumentError(param, f"expected a number of seconds > 0, got {preview(seconds)}")
    return float(seconds)


def pipe(digraph, fmt: str, timeout: float = DOT_TIMEOUT) -> bytes:
    """Render ``digraph`` with Graphviz's ``dot``, stopped after ``timeout`` seconds; its absence,
    failure or time-out is one line.

    ``dot`` is run here rather than through ``Digraph.pipe()``, which takes no time limit.
    """
    import subprocess

    from shapecalc.core.safetext import printable

    timeout = check_timeout(timeout)
    command = [digraph.engine, f"-T{fmt}"]
    source = printable(digraph.source).encode(digraph.encoding or "utf-8")
    try:
        done = subprocess.run(command, input=source, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise GraphvizNotFound(f"writing {fmt.upper()} needs {NO_DOT}, or use --format dot, which needs "
                               "no Graphviz") from None
    except subprocess.TimeoutExpired:  # subprocess.run has killed and reaped `dot` already
        raise GraphvizTimeout(" ".join(command), timeout) from None
    except BrokenPipeError:  # `dot` ended before reading the drawing: not our stdout closing
        raise GraphvizFailed("Graphviz `dot` failed: it exited before reading the drawing") from None
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace")
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        first = next((line for line in lines if line.lower().startswith("error")), lines[0] if lines else None)
        raise GraphvizFailed(f"Graphviz `dot` failed: {first or 'exit status ' + str(done.returncode)}")
    return done.stdout


__all__ = ["DOT_TIMEOUT", "NO_DOT", "GraphvizFailed", "GraphvizNotFound", "GraphvizTimeout",
           "check_timeout", "pipe"]
