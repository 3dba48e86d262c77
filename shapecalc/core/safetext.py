"""Text that is safe to print, and bounded previews of values from outside.

Names and values come from files and Python code written by anyone, and end up on a terminal,
in CSV, Markdown, DOT/SVG and HTML. Three things in them do harm when printed raw:

* control characters (C0, DEL, C1): ``ESC [ … m`` and OSC sequences rewrite the terminal,
  retitle the window or forge hyperlinks; BEL rings;
* bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069, U+200E/U+200F,
  U+061C): they reorder what is shown, so ``evil\\u202egnp.exe`` reads as something else;
* lone surrogates (U+D800–U+DFFF alone, from ``surrogateescape`` or hand-written ``\\ud800``):
  they cannot be encoded as UTF-8, so printing one is a ``UnicodeEncodeError``.

:func:`printable` replaces each with its ``\\uXXXX`` escape. That form reads the same in every
output and keeps JSON valid (inside a JSON string it *is* the escape of the same character).
The command line applies it to everything it writes (``shapecalc.cli``), and the renderers to
every text file they write, so a new message or column is covered without remembering to.

:func:`preview` is the one way a message quotes a value: ``reprlib``-bounded in size, depth
and element count, so a YAML alias bomb (a list that refers to itself a billion times once
expanded) or a megabyte string is quoted in a few dozen characters and a few hundred steps.
"""

from __future__ import annotations

import io
import re
import reprlib
from typing import Any

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
#: Every character :func:`printable` escapes: C0 but tab and newline, DEL and C1, the bidi
#: controls, and surrogates (alone in a str they cannot be encoded).
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + _BIDI + "\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


def printable(text: str) -> str:
    """``text`` with control characters, bidi controls and lone surrogates escaped (``\\u001b``);
    tabs and newlines are kept. Plain text is returned as it is, at the speed of one regex scan."""
    return UNSAFE.sub(_escape, text)


def one_line(text: str) -> str:
    """:func:`printable`, with every run of whitespace (newlines included) made one space."""
    return " ".join(printable(text).split())


#: Formula prefixes that spreadsheets evaluate in a CSV cell (OWASP's CSV injection list).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: one that would start a formula gets a leading
    ``'`` (a number such as ``-3`` is a value, not a formula, and is left alone)."""
    if text.startswith(FORMULA_START) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class StreamFailed(OSError):
    """Writing to standard output or error failed for another reason than a closed pipe: the
    disk is full (``> /dev/full``) or the stream was closed (``>&-``)."""

    def __init__(self, stream: Any, err: BaseException) -> None:
        why = "no space left on the device" if getattr(err, "errno", None) == 28 else (
            getattr(err, "strerror", None) or str(err) or type(err).__name__)
        name = getattr(unfiltered(stream), "name", "the stream")
        super().__init__(getattr(err, "errno", None), why)
        self.stream_name = {"<stdout>": "standard output", "<stderr>": "standard error"}.get(name, str(name))

    def __str__(self) -> str:
        return f"cannot write to {self.stream_name}: {self.strerror}"


class ClosedStream(io.TextIOBase):
    """Stands for a standard stream the caller closed (``shapecalc show lenet >&-``): any
    write fails with one clear error instead of ``'NoneType' object has no attribute``."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def write(self, text: str) -> int:
        if not text:
            return 0
        raise OSError(9, "it is closed")

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


class PrintableStream(io.TextIOBase):
    """A text stream that passes everything written through :func:`printable`: the command
    line puts one over stdout and stderr, so no message or table can reach the terminal raw.

    It has no ``buffer``, so ``click.echo`` writes through it rather than around it. Rich
    consoles that draw colour themselves write to :attr:`unfiltered` (see :func:`unfiltered`)
    and are given printable text instead."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.unfiltered = inner

    def write(self, text: str) -> int:
        try:
            self.unfiltered.write(printable(text))
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as err:  # a full disk (/dev/full), a closed stream
            raise StreamFailed(self.unfiltered, err) from None
        return len(text)

    def flush(self) -> None:
        try:
            self.unfiltered.flush()
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as err:
            raise StreamFailed(self.unfiltered, err) from None

    def fileno(self) -> int:
        return self.unfiltered.fileno()

    def isatty(self) -> bool:
        return self.unfiltered.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.unfiltered, "encoding", "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.unfiltered, "errors", None)


def unfiltered(stream: Any) -> Any:
    """The stream under a :class:`PrintableStream` (for a rich console drawing its own colour
    codes, fed with :func:`printable` text), or ``stream`` itself."""
    return getattr(stream, "unfiltered", stream) if isinstance(stream, PrintableStream) else stream


class _Preview(reprlib.Repr):
    """``reprlib`` limits, plus exact ints shown by size once they are long, and never a
    ``repr`` that fails (a cycle, an object whose ``__repr__`` raises)."""

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 200:  # no int → text conversion of a huge number (it is quadratic)
            return f"an integer of about {int(x.bit_length() * 0.30103) + 1} digits"
        return super().repr_int(x, level)

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            text = repr(x)
        except Exception:
            return f"<a {type(x).__name__}>"
        return text if len(text) <= self.maxother else text[: self.maxother - 1] + "…"


_PREVIEW = _Preview()
_PREVIEW.maxlevel = 3
_PREVIEW.maxlist = _PREVIEW.maxtuple = _PREVIEW.maxset = _PREVIEW.maxfrozenset = 6
_PREVIEW.maxdict = 4
_PREVIEW.maxstring = 50
_PREVIEW.maxlong = 40
_PREVIEW.maxother = 50
_PREVIEW.fillvalue = "…"


def clipped(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters, else its longest start that ends at a
    word and fits with the ``…`` after it: a reader sees where it stops, never half a word (a
    first word longer than the limit is cut inside, as nothing shorter is left)."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    if not text[limit - 1].isspace():
        space = max(cut.rfind(" "), cut.rfind("\n"), cut.rfind("\t"))
        if space > 0:
            cut = cut[:space]
    return cut.rstrip() + "…"


def preview(value: Any, limit: int = 60) -> str:
    """A short, printable ``repr`` of ``value`` for a message: at most ``limit`` characters,
    and bounded work whatever ``value`` is (at most 3 levels and 6 items per level are read)."""
    bool_or_none = value is None or isinstance(value, bool)
    try:
        text = repr(value) if bool_or_none else _PREVIEW.repr(value)
    except Exception:  # a hostile __repr__ inside a container, a digit limit, a recursion
        text = f"<a {type(value).__name__}>"
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["ClosedStream", "FORMULA_START", "PrintableStream", "StreamFailed", "UNSAFE", "clipped", "csv_cell",
           "one_line", "preview", "printable", "unfiltered"]
