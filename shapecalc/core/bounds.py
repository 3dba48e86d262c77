"""What a value from outside may be: one declared :class:`Bound` per field, checked in one place.

A value typed on the command line, stored in a checkpoint or a run's ``metrics.json``, read
from a ``config.json`` or passed to the API is checked against the same declaration: its type
(a bool is not an int; a float must be finite), its range and an upper bound that keeps the
work and memory it causes small (a seed torch can take, a thread count libgomp survives, an
image size whose batch fits in memory). The declaration is data, so the command line, the
checkpoint reader and the API cannot disagree about a field.

:func:`ascii_int` is the one reader of integers typed as text: plain ASCII digits only, so
``٢٢٤``, ``３``, ``1_000``, ``+3``, ``-0`` and ``0x10`` are refused rather than read as
something the user did not write.
"""

from __future__ import annotations

import math
import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Mapping

from shapecalc.core.errors import ArgumentError
from shapecalc.core.safetext import preview

_DIGITS = re.compile(r"[0-9]+")
#: Longest integer text read: 19 digits hold every 64-bit size; more is refused before ``int()``.
MAX_DIGITS = 19


#: Largest input (bytes) a forward that reads tensor values (``if x.sum() > 0``) is run on for
#: real, on zeros: above it the run is refused rather than allocated (1×1×20000×20000 float32
#: is 1.5 GiB). The command line's ``--max-run-mb`` raises it for one run.
DEFAULT_MAX_RUN_BYTES = 256 * 2**20
MAX_RUN_BYTES: ContextVar[int] = ContextVar("shapecalc_max_run_bytes", default=DEFAULT_MAX_RUN_BYTES)


def ascii_int(text: str, param: str, *, negative: bool = False) -> int:
    """``text`` as an int when it is ASCII digits (a leading ``-`` if ``negative``); else an
    :class:`ArgumentError` naming ``param``."""
    raw = str(text).strip()
    body = raw[1:] if negative and raw.startswith("-") and raw != "-0" else raw
    if not _DIGITS.fullmatch(body):
        raise ArgumentError(param, f"expected an integer written with the digits 0-9, got "
                                   f"{preview(raw, 40)}")
    if len(body.lstrip("0")) > MAX_DIGITS:
        raise ArgumentError(param, f"{len(body)} digits is too large (at most {MAX_DIGITS})")
    return int(raw)


@dataclass(frozen=True)
class Bound:
    """One field's declaration: ``kind`` (int, float, str or bool), inclusive ``low``/``high``,
    whether ``None`` is allowed, and ``why`` the maximum is what it is (said when it is hit)."""

    kind: type
    low: float | None = None
    high: float | None = None
    optional: bool = False
    why: str = ""
    #: ``low`` itself is refused (a learning rate is > 0, not ≥ 0)
    above_low: bool = False

    def check(self, name: str, value: Any) -> Any:
        """``value`` if it fits, else :class:`ArgumentError` naming ``name`` and what is allowed."""
        if value is None:
            if self.optional:
                return None
            raise ArgumentError(name, f"is required ({self.describe()})")
        if self.kind is bool:
            if type(value) is not bool:
                raise ArgumentError(name, f"expected true or false, got {preview(value, 40)}")
            return value
        if self.kind is str:
            if type(value) is not str:
                raise ArgumentError(name, f"expected text, got {preview(value, 40)}")
            if "\x00" in value:
                raise ArgumentError(name, "contains a NUL character")
            if self.high is not None and len(value) > self.high:
                raise ArgumentError(name, f"longer than {int(self.high):,} characters")
            return value
        if self.kind is int:
            if type(value) is not int:
                raise ArgumentError(name, f"expected an integer, got {preview(value, 40)}")
        elif type(value) not in (int, float):
            raise ArgumentError(name, f"expected a number, got {preview(value, 40)}")
        elif not math.isfinite(value):
            raise ArgumentError(name, f"expected a finite number, got {value}")
        if self.low is not None and (value <= self.low if self.above_low else value < self.low):
            sign = ">" if self.above_low else "≥"
            raise ArgumentError(name, f"must be {sign} {_number(self.low)}, got {preview(value, 40)}")
        if self.high is not None and value > self.high:
            why = f" ({self.why})" if self.why else ""
            raise ArgumentError(name, f"must be ≤ {_number(self.high)}{why}, got {preview(value, 40)}")
        return value

    def describe(self) -> str:
        word = {int: "an integer", float: "a number", str: "text", bool: "true or false"}[self.kind]
        if self.low is not None and self.high is not None:
            return f"{word} from {_number(self.low)} to {_number(self.high)}"
        if self.low is not None:
            return f"{word} ≥ {_number(self.low)}"
        return word


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def check_all(bounds: Mapping[str, Bound], values: Mapping[str, Any]) -> None:
    """Every field of ``values`` that ``bounds`` declares, checked (the first bad one raises)."""
    for name, bound in bounds.items():
        if name in values:
            bound.check(name, values[name])


__all__ = ["Bound", "DEFAULT_MAX_RUN_BYTES", "MAX_DIGITS", "MAX_RUN_BYTES", "ascii_int", "check_all"]
