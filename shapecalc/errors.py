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


class FieldError(ConfigError):
    """One layer argument has the wrong type or value, whatever the input.

    ``field`` names the argument (``kernel_size``, ``dims[2]``) and ``detail`` says what is
    wrong with it, so that a spec file can point at its key and the CLI at its flag without
    parsing the message (which is ``"<field>: <detail>"``).
    """

    def __init__(self, field: str, detail: str, **kwargs: Any) -> None:
        super().__init__(f"{field}: {detail}", **kwargs)
        self.field = field
        self.detail = detail

    def located(self, node: str, layer: str | None = None) -> "FieldError":
        return FieldError(self.field, self.detail, layer=self.layer or layer, node=node,
                          axis=self.axis, numbers=self.numbers)


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
        self.detail = detail if detail is not None else message


class UsageError(ShapecalcError):
    """A command-line value is malformed; the message names the parameter and what is allowed."""
