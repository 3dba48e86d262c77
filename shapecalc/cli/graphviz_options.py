"""The time limit on Graphviz's ``dot``, as ``shapecalc graph`` and ``shapecalc report`` take it.

``dot`` on a huge model drawn with ``--expand`` can run for many minutes; the library stops it
after ``dot_timeout`` seconds (:data:`shapecalc.output.dot.DOT_TIMEOUT` unless raised) and these
commands word the resulting error with their own flags.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import click

from shapecalc.cli.common import AsciiFloat

#: The library's default, repeated here so that ``--help`` needs no import of the renderer.
DEFAULT_DOT_TIMEOUT = 60.0


def _seconds(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not 0 < value <= 1e9:  # AsciiFloat already refused NaN, inf and non-ASCII digits
        raise click.BadParameter(f"expected a number of seconds > 0 and ≤ 1e9, got {value:g}", ctx, param)
    return value


def dot_timeout_option() -> click.Option:
    return click.option(
        "--dot-timeout", "dot_timeout", type=AsciiFloat(),
        default=DEFAULT_DOT_TIMEOUT, show_default=True, metavar="SECONDS", callback=_seconds,
        help="Stop Graphviz's dot after SECONDS (drawing thousands of layers can take minutes).")


@contextmanager
def dot_timeout_as_flags(fewer: str = "--depth N collapses nested blocks") -> Iterator[None]:
    """Re-raise ``dot``'s time-out naming this command's flags: ``fewer`` (how to draw fewer
    nodes) and ``--dot-timeout``."""
    from shapecalc.output.dot import GraphvizTimeout

    try:
        yield
    except GraphvizTimeout as err:
        raise err.for_flags(fewer, "--dot-timeout") from None


__all__ = ["DEFAULT_DOT_TIMEOUT", "dot_timeout_as_flags", "dot_timeout_option"]
