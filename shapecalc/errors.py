"""Typed errors: every failure carries the numbers that broke, so the CLI can print one line."""

from __future__ import annotations

from typing import Any


class ShapecalcError(ValueError):
    """Base of every error this package raises on purpose (bad input, bad model, bad shape)."""


class ShapeError(ShapecalcError):
    """A layer cannot accept its input, or is configured so that torch would refuse it.

    ``node`` is the dotted path of the node in the model (filled in by the graph pass),
    ``layer`` the layer's short description, ``axis`` the spatial axis (``H``, ``W``, ``D``,
    ``L``) where the arithmetic broke, and ``numbers`` the values involved, so that tools
    (``shapecalc check``) can reason about the failure instead of parsing the message.
    """

    def __init__(
        self,
        message: str,
        *,
        layer: str | None = None,
        node: str | None = None,
        axis: str | None = None,
        numbers: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.layer = layer
        self.node = node
        self.axis = axis
        self.numbers = dict(numbers or {})

    def located(self, node: str, layer: str | None = None) -> "ShapeError":
        """Return a copy that names the node (and layer) it happened at."""
        err = type(self)(
            self.message,
            layer=self.layer or layer,
            node=node,
            axis=self.axis,
            numbers=self.numbers,
        )
        return err

    def __str__(self) -> str:
        where = []
        if self.node is not None:
            where.append(f"node '{self.node}'")
        if self.layer is not None:
            where.append(self.layer)
        prefix = " ".join(where)
        axis = f" (axis {self.axis})" if self.axis else ""
        return f"{prefix}{axis}: {self.message}" if prefix else f"{self.message}{axis}"


class ConfigError(ShapeError):
    """The layer's own arguments are invalid whatever the input (stride 0, groups not dividing)."""


class SpecError(ShapecalcError):
    """A model specification (zoo entry, spec file, Python target) cannot be read or built."""


class UsageError(ShapecalcError):
    """A command-line value is malformed; the message names the parameter and what is allowed."""


class ArgumentError(ShapecalcError):
    """A library function got an argument of the wrong type or value. ``param`` is the
    parameter's name (``input_shape``); the CLI maps it to its own flag (``--input``)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.detail = message
