"""Checking a layer's arguments against the types its dataclass fields declare.

A layer's arguments come from Python callers, spec files and the CLI, so none of them can be
trusted to be typed: ``"3"``, ``3.0``, ``NaN``, ``None``, ``True`` or a 5,000-digit integer
must each be refused with an error that names the argument, before any arithmetic sees them.
The check reads the REAL annotations (``typing.get_type_hints``), not their text, so a new
layer is checked as soon as it declares its fields. NumPy scalars are accepted and become
plain ``int``/``float``/``bool`` so that everything downstream (JSON included) sees Python
values; lists become tuples.

:class:`Layer <shapecalc.core.layers.base.Layer>` runs :func:`check_fields` before any
``__post_init__`` of a subclass, and subclasses check VALUES (positive, in range, one of a
set of words) with the helpers below.
"""

from __future__ import annotations

import dataclasses
import math
from contextvars import ContextVar
import numbers
import types
import typing
from typing import Any, Iterable

from shapecalc.core.bounds import Bound
from shapecalc.core.errors import ArgumentError, FieldError
from shapecalc.core.safetext import preview

#: Torch sizes and indices are 64-bit integers: nothing larger can describe a real tensor.
MAX_INT = 2**63 - 1
#: More entries than any tensor has dimensions (torch allows 64 at most).
MAX_TUPLE = 64

#: Largest size a layer field may hold: every real tensor dimension fits in 31 bits, and a
#: weight sized by two such fields is already beyond any machine (``Linear(2**31, 2**31)`` is
#: 16 EiB of float32). The one-line refusal names the field and the range.
MAX_FIELD_SIZE = 2**31 - 1
#: Stacked recurrent layers: torch builds one module per layer (a meta build of 10⁷ took minutes).
MAX_RECURRENT_LAYERS = 1024

_SIZE = Bound(int, high=MAX_FIELD_SIZE, why="every real tensor dimension fits in 31 bits")
_AXIS = Bound(int, -MAX_TUPLE, MAX_TUPLE - 1, why=f"a tensor has at most {MAX_TUPLE} dimensions")
#: Every field name's declared maximum (:class:`~shapecalc.core.bounds.Bound`), checked for
#: every layer kind in :func:`check_fields`, whether the value came from Python, a spec file or
#: the command line. Lower limits are each layer's own (padding may be 0, a dim negative).
#: Fields the engine infers from the input (``in_features=None``) are exempt when derived: a
#: 100,000×100,000 input gives a Linear more features than any bound, exactly.
FIELD_LIMITS: dict[str, Bound] = {
    **dict.fromkeys((
        "kernel_size", "stride", "padding", "dilation", "output_padding", "pad", "output_size",
        "size", "shape", "divisor_override", "in_channels", "out_channels", "groups",
        "in_features", "out_features", "num_features", "num_channels", "num_groups",
        "normalized_shape", "num_parameters", "num_embeddings", "embedding_dim", "padding_idx",
        "input_size", "hidden_size", "proj_size", "embed_dim", "kdim", "vdim", "num_heads",
        "d_model", "nhead", "dim_feedforward", "upscale_factor", "downscale_factor", "num_experts"),
        _SIZE),
    **dict.fromkeys(("dim", "dim0", "dim1", "dims", "start_dim", "end_dim"), _AXIS),
    "num_layers": Bound(int, high=MAX_RECURRENT_LAYERS, why="torch builds one module per layer"),
    "scale_factor": Bound(float, high=MAX_FIELD_SIZE, why="it multiplies a tensor dimension"),
}

#: Set while the engine fills an inferred field from an input shape (:func:`derived`).
_DERIVING: ContextVar[bool] = ContextVar("shapecalc_deriving", default=False)

_NONE = type(None)
_hints: dict[type, tuple[tuple[str, Any, frozenset, frozenset, Bound | None], ...]] = {}


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` for messages: :func:`~shapecalc.core.safetext.preview`, bounded in size and work
    (a YAML alias bomb, a 5,000-digit integer, a megabyte string) and printable."""
    return preview(value, limit)


_SCALARS = {int: (int,), float: (float, int), bool: (bool,), str: (str,), _NONE: (_NONE,)}


def _fast_types(hint: Any) -> tuple[frozenset, frozenset]:
    """Exact types a value of ``hint`` may have without further conversion: (scalars, tuple
    elements). Most values are plain ints and tuples of ints; they skip the general walk."""
    scalars: set = set()
    elements: set = set()
    for alt in _alternatives(hint):
        if alt in _SCALARS:
            scalars.update(_SCALARS[alt])
        elif typing.get_origin(alt) is tuple:
            args = typing.get_args(alt)
            if len(args) == 2 and args[1] is Ellipsis:
                for inner in _alternatives(args[0]):
                    elements.update(_SCALARS.get(inner, ()))
    return frozenset(scalars), frozenset(elements)


def _field_hints(cls: type) -> tuple[tuple[str, Any, frozenset, frozenset, Bound | None], ...]:
    cached = _hints.get(cls)
    if cached is None:
        resolved = typing.get_type_hints(cls)
        # A field left out of comparisons (a measured layer's runner and cache) is machinery
        # the importer sets, not part of the layer's value: no spec or user ever gives it.
        hints = [(f.name, resolved.get(f.name, Any)) for f in dataclasses.fields(cls)
                 if f.init and f.compare]
        cached = tuple((name, hint, *_fast_types(hint), FIELD_LIMITS.get(name)) for name, hint in hints)
        _hints[cls] = cached
    return cached


def _plain(value: Any, types_: frozenset, non_finite: bool) -> bool:
    kind = type(value)
    if kind not in types_:
        return False
    if kind is int:
        return -MAX_INT <= value <= MAX_INT
    if kind is float:
        return non_finite or math.isfinite(value)
    return True


def check_fields(layer: Any) -> None:
    """Check every init field of ``layer`` against its annotation; normalise NumPy scalars and
    lists in place (the layer is frozen, so through ``object.__setattr__``)."""
    allow = getattr(type(layer), "non_finite", ())
    derived = getattr(type(layer), "inferred", ()) if _DERIVING.get() else ()
    for name, hint, scalars, elements, limit in _field_hints(type(layer)):
        value = getattr(layer, name)
        if name in derived and type(value) is int and value >= 0 and value.bit_length() < 3000:
            # in_features of a huge input is derived by the engine and exact beyond torch's
            # int64 (the numbers still print: Python's digit limit is far above 3,000 bits)
            continue
        free = name in allow
        if not (_plain(value, scalars, free) or (
                type(value) is tuple and elements and len(value) <= MAX_TUPLE
                and all(_plain(v, elements, free) for v in value))):
            try:
                fixed = conform(value, hint, name, free)
            except FieldError as err:
                raise FieldError(err.field, err.detail, layer=type(layer).__name__, numbers=err.numbers) from None
            if fixed is not value:
                object.__setattr__(layer, name, fixed)
                value = fixed
        if limit is not None:
            within(layer, name, value, limit)


def derived(layer: Any, **values: Any) -> Any:
    """``layer`` with inferred fields set to ``values`` the engine worked out from an input
    shape. Such a value is exempt from the field's maximum and from int64 (a 100,000×100,000
    input gives a Linear more features than either, exactly); the same value written by a
    user is checked like any other."""
    token = _DERIVING.set(True)
    try:
        return dataclasses.replace(layer, **values)
    finally:
        _DERIVING.reset(token)


def within(layer: Any, name: str, value: Any, limit: Bound) -> None:
    """Every number in field ``name``'s ``value`` (None, a number, text or a tuple of them) is
    in ``limit``'s range; else one :class:`FieldError` naming the field and the range."""
    for v in (value if type(value) is tuple else (value,)):
        if type(v) in (int, float) and not (
                (limit.high is None or v <= limit.high) and (limit.low is None or v >= limit.low)):
            try:
                limit.check(name, v)
            except ArgumentError as err:
                raise FieldError(name, err.detail, layer=type(layer).__name__,
                                 numbers={name: preview(value)}) from None


class _Mismatch(Exception):
    """``value`` is not of this alternative; the caller tries the next one."""


def conform(value: Any, hint: Any, name: str, non_finite: bool = False) -> Any:
    """``value`` as ``hint`` describes it (normalised), or a :class:`FieldError` naming ``name``."""
    try:
        return _conform(value, hint, name, non_finite)
    except _Mismatch:
        raise FieldError(name, f"expected {describe_type(hint)}, got {short_repr(value)}",
                         numbers={name: short_repr(value)}) from None


def _alternatives(hint: Any) -> tuple[Any, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        out: list[Any] = []
        for arg in typing.get_args(hint):
            out.extend(_alternatives(arg))
        return tuple(out)
    return (hint,)


def _conform(value: Any, hint: Any, name: str, non_finite: bool) -> Any:
    # Try the scalar alternatives before the tuples so that ``3`` is an int, not an error.
    for alt in sorted(_alternatives(hint), key=lambda a: typing.get_origin(a) is tuple):
        try:
            return _one(value, alt, name, non_finite)
        except _Mismatch:
            continue
    raise _Mismatch


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or (type(value).__module__ == "numpy" and type(value).__name__ in ("bool_", "bool"))


def _one(value: Any, hint: Any, name: str, non_finite: bool) -> Any:
    if hint is Any:
        return value
    if hint is _NONE:
        if value is None:
            return value
        raise _Mismatch
    if hint is bool:
        if _is_bool(value):
            return bool(value)
        raise _Mismatch
    if hint is int:
        if _is_bool(value) or not isinstance(value, numbers.Integral):
            raise _Mismatch
        number = int(value)
        if abs(number) > MAX_INT:
            raise FieldError(name, f"{short_repr(number)} is too large (at most {MAX_INT:,}, "
                             "torch's 64-bit limit)", numbers={name: short_repr(number)})
        return value if type(value) is int else number
    if hint is float:
        if _is_bool(value) or not isinstance(value, numbers.Real):
            raise _Mismatch
        if isinstance(value, numbers.Integral):
            number: Any = int(value)
            if abs(number) > MAX_INT:
                raise FieldError(name, f"{short_repr(number)} is too large",
                                 numbers={name: short_repr(number)})
        else:
            number = float(value)
            if not non_finite and not math.isfinite(number):
                raise FieldError(name, f"expected a finite number, got {number}",
                                 numbers={name: number})
        return value if type(value) in (int, float) else number
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            raise _Mismatch
        if len(value) > MAX_TUPLE:
            raise FieldError(name, f"{len(value):,} entries is more than a tensor has dimensions "
                             f"(at most {MAX_TUPLE})", numbers={name: len(value)})
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            items = [_conform(v, args[0], f"{name}[{i}]", non_finite) for i, v in enumerate(value)]
        elif len(args) == len(value):
            items = [_conform(v, a, f"{name}[{i}]", non_finite) for i, (v, a) in enumerate(zip(value, args))]
        else:
            raise _Mismatch
        if isinstance(value, tuple) and all(a is b for a, b in zip(items, value)):
            return value
        return tuple(items)
    if origin is typing.Literal:
        if any(value == choice and type(value) is type(choice) for choice in typing.get_args(hint)):
            return value
        raise _Mismatch
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise _Mismatch
    return value  # an annotation this checker does not know: leave the value to the layer


_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string", _NONE: "null"}


def describe_type(hint: Any) -> str:
    """``int | tuple[int, ...] | None`` → ``"an integer, a list of integers or null"``."""
    words: list[str] = []
    for alt in _alternatives(hint):
        if typing.get_origin(alt) is tuple:
            inner = typing.get_args(alt)
            element = describe_type(inner[0]) if inner else "values"
            word = f"a list of {_plural(element)}"
        elif typing.get_origin(alt) is typing.Literal:
            word = " or ".join(repr(c) for c in typing.get_args(alt))
        else:
            word = _WORDS.get(alt, getattr(alt, "__name__", str(alt)))
        if word not in words:
            words.append(word)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _plural(words: str) -> str:
    return (words.replace("an integer", "integers").replace("a number", "numbers")
            .replace("a string", "strings").replace("true or false", "booleans"))


# ------------------------------------------------------------------ value checks
def _fail(layer: Any, name: str, message: str, value: Any) -> FieldError:
    return FieldError(name, f"{message}, got {short_repr(value)}", layer=type(layer).__name__,
                      numbers={name: value})


def _values(value: Any) -> Iterable[Any]:
    return value if isinstance(value, tuple) else (value,)


def at_least(layer: Any, name: str, minimum: int | float, *, optional: bool = True) -> None:
    """Every number in field ``name`` (an int, a float or a tuple of them) is ≥ ``minimum``."""
    value = getattr(layer, name)
    if value is None and optional:
        return
    if any(v is not None and v < minimum for v in _values(value)):
        word = {0: "non-negative", 1: "positive"}.get(minimum, f"at least {minimum}")  # type: ignore[call-overload]
        raise _fail(layer, name, f"must be {word}", value)


def above(layer: Any, name: str, bound: float) -> None:
    """Every number in field ``name`` is strictly greater than ``bound`` (``None`` passes)."""
    value = getattr(layer, name)
    if value is not None and any(v <= bound for v in _values(value)):
        raise _fail(layer, name, "must be positive" if bound == 0 else f"must be above {bound:g}", value)


def at_most(layer: Any, name: str, maximum: int | float, why: str = "") -> None:
    value = getattr(layer, name)
    if any(v is not None and v > maximum for v in _values(value)):
        raise _fail(layer, name, f"must be at most {maximum:,}{why}", value)


def between(layer: Any, name: str, low: float, high: float) -> None:
    value = getattr(layer, name)
    if value is not None and not all(low <= v <= high for v in _values(value)):
        raise _fail(layer, name, f"must be between {low:g} and {high:g}", value)


def one_of(layer: Any, name: str, choices: Iterable[str]) -> None:
    value = getattr(layer, name)
    options = tuple(choices)
    if value not in options:
        raise _fail(layer, name, f"must be one of {', '.join(repr(c) for c in options)}", value)
