"""Typed errors: every failure carries the numbers that broke, so the CLI can print one line.

The tree (all are ``ShapecalcError``, itself a ``ValueError``)::

    ShapecalcError
    ├── LayerError          a layer refuses (base of the next two; carries node, layer, numbers)
    │   ├── ShapeError      ... the input it receives: another input size may fix it
    │   └── ConfigError     ... its own arguments: no input size can fix it (stride 0, groups)
    ├── SpecError           a model cannot be read, imported or built
    ├── UsageError          a command-line value is malformed
    └── ArgumentError       a library call got a wrong type or value; ``param`` names it

``ConfigError`` is a sibling of ``ShapeError`` on purpose: a size scan catches ``ShapeError``
(this size fails, try the next) and stops at the first ``ConfigError`` (no size can help).
"""

from __future__ import annotations

from contextlib import contextmanager
from enum import Enum
from typing import TYPE_CHECKING, Any, Iterator

from shapecalc.core.safetext import preview, printable

if TYPE_CHECKING:
    from shapecalc.core.graph import Graph


class ShapecalcError(ValueError):
    """Base of every error this package raises on purpose (bad input, bad model, bad shape).

    Its text is made printable (:func:`~shapecalc.core.safetext.printable`) when it is built:
    a Python caller who prints ``str(err)`` sees ``\\u001b`` for an ESC in a layer's name, not
    a rewritten terminal, and a lone surrogate cannot make the print itself fail."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*(printable(a) if isinstance(a, str) else a for a in args))


class Reason(str, Enum):
    """Why a layer refused, for tools that react to it (``diagnose`` dispatches on this)."""

    FEATURES = "features"    # a Linear receives another number of features than in_features
    CHANNELS = "channels"    # a conv/norm receives another number of channels than it expects
    ELEMENTS = "elements"    # a reshape's sizes do not multiply to the element count
    MERGE = "merge"          # the inputs of an add/mul/concat disagree
    TOO_SMALL = "too_small"  # the (padded) spatial size is smaller than the window
    OTHER = "other"          # anything else; the message says what


class LayerError(ShapecalcError):
    """A layer cannot run. ``node`` is the dotted path of the node in the model (filled in by the
    graph pass), ``layer`` the layer's short description, ``axis`` the spatial axis (``H``,
    ``W``, ``D``, ``L``) where the arithmetic broke, ``numbers`` the values involved and
    ``reason`` what kind of refusal it is, so that tools (``shapecalc check``) can reason about
    the failure instead of parsing the message. ``partial_graph`` is the graph recorded up to
    the failing node when the model's graph had to be recorded by running it (hooks).
    """

    def __init__(
        self,
        message: str,
        *,
        layer: str | None = None,
        node: str | None = None,
        axis: str | None = None,
        numbers: dict[str, Any] | None = None,
        reason: Reason = Reason.OTHER,
        partial_graph: "Graph | None" = None,
    ) -> None:
        message = printable(message)
        super().__init__(message)
        self.message = message
        # node and layer stay as the model spells them (tools look nodes up by name); __str__
        # makes them printable
        self.layer = layer
        self.node = node
        self.axis = axis
        self.numbers = dict(numbers or {})
        self.reason = reason
        self.partial_graph = partial_graph

    def replace(self, **changes: Any) -> "LayerError":
        """A copy of this error (same class and reason) with some fields changed."""
        fields = {"layer": self.layer, "node": self.node, "axis": self.axis, "numbers": self.numbers,
                  "reason": self.reason, "partial_graph": self.partial_graph}
        message = changes.pop("message", self.message)
        fields.update(changes)
        return type(self)(message, **fields)

    def located(self, node: str, layer: str | None = None) -> "LayerError":
        """Return a copy that names the node (and layer) it happened at."""
        return self.replace(node=node, layer=self.layer or layer)

    def __str__(self) -> str:
        where = []
        if self.node is not None:
            where.append(f"node '{self.node}'")
        if self.layer is not None:
            where.append(self.layer)
        prefix = printable(" ".join(where))
        axis = f" (axis {self.axis})" if self.axis else ""
        return f"{prefix}{axis}: {self.message}" if prefix else f"{self.message}{axis}"


class ShapeError(LayerError):
    """A layer cannot accept its input (too small, wrong channel or feature count, shapes that a
    merge cannot combine): another input size, or an edit of the model, may fix it."""


class ConfigError(LayerError):
    """The layer's own arguments are invalid whatever the input (stride 0, groups not dividing)."""


class FieldError(ConfigError):
    """One layer argument has the wrong type or value, whatever the input.

    ``field`` names the argument (``kernel_size``, ``dims[2]``) and ``detail`` says what is
    wrong with it, so that a spec file can point at its key and the CLI at its flag without
    parsing the message (which is ``"<field>: <detail>"``).
    """

    def __init__(self, field: str, detail: str, **kwargs: Any) -> None:
        super().__init__(f"{field}: {detail}", **kwargs)
        self.field = field
        self.detail = printable(detail)

    def replace(self, **changes: Any) -> "FieldError":
        changes.pop("message", None)  # the message is made from field and detail
        fields = {"layer": self.layer, "node": self.node, "axis": self.axis, "numbers": self.numbers,
                  "reason": self.reason, "partial_graph": self.partial_graph}
        fields.update(changes)
        return FieldError(self.field, self.detail, **fields)


class SpecError(ShapecalcError):
    """A model specification (zoo entry, spec file, Python target) cannot be read or built.

    For a spec file, ``file``, ``line`` and ``key_path`` (``layers[3].kernel_size``) say where,
    when known; the message already includes them.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key_path: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.key_path = key_path
        #: what is wrong, without the place (``expected an integer, got '3'``)
        self.detail = printable(detail) if detail is not None else self.args[0]


class UsageError(ShapecalcError):
    """A command-line value is malformed; the message names the parameter and what is allowed."""


class ArgumentError(ShapecalcError):
    """A library function got an argument of the wrong type or value. ``param`` is the
    parameter's name (``input_shape``); the CLI maps it to its own flag (``--input``)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.detail = printable(message)


class UnknownName(ArgumentError, KeyError):
    """A name looked up (a node, a block) that is not there: an :class:`ArgumentError` naming
    the parameter, and still a ``KeyError`` for code that caught one."""

    def __str__(self) -> str:
        return str(self.args[0])


@contextmanager
def user_code(what: str) -> Iterator[None]:
    """Turn what the user's code raises outside ``Exception`` (``what``: "importing net.py") into
    one-line errors: ``SystemExit``, ``GeneratorExit`` and any other ``BaseException`` subclass
    would otherwise end the run silently or with a traceback, and a ``RecursionError`` or
    ``MemoryError`` would read as a bug. ``KeyboardInterrupt`` passes on, so Ctrl-C is exit
    130 wherever it lands."""
    try:
        yield
    except SystemExit as err:
        code = f" {preview(err.code)}" if err.code is not None else ""
        raise SpecError(f"{what} raised SystemExit{code}; a model file must build a model, "
                        "not exit") from None
    except RecursionError:  # a 3,000-deep nn.Sequential, a forward returning a 2,000-deep list
        import sys

        raise SpecError(f"{what}: nested deeper than Python's recursion limit "
                        f"({sys.getrecursionlimit():,} calls); shapecalc cannot read it") from None
    except MemoryError:
        raise SpecError(f"{what}: ran out of memory") from None
    except (KeyboardInterrupt, Exception):
        raise
    except BaseException as err:  # GeneratorExit, a user's own BaseException subclass
        raise SpecError(f"{what} raised {type(err).__name__}: {preview(str(err), 120)}") from None
