"""A model's inputs as one value: a shape, an element type and a label per tensor the forward
takes, built once at the edge (the API, ``summary()``, the CLI) and passed down as it is.

The element types are one table (:data:`DTYPE_BYTES`) with one checker (:func:`dtype_name`),
so every entry point accepts the same names and refuses the same ones with the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from shapecalc.core.argcheck import exact_int
from shapecalc.core.errors import ArgumentError
from shapecalc.core.safetext import preview

Shape = tuple[int, ...]

#: Every element type shapecalc knows, with its size in bytes: what an input may hold and what
#: the memory figures (``dtype``) may assume. Names are torch's (``torch.int64``).
DTYPE_BYTES = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "uint8": 1,
    "float8": 1, "int32": 4, "int64": 8, "int16": 2, "bool": 1,
}
#: Names that are not a torch attribute: the torch dtype a tensor of that type is made with.
_TORCH_NAMES = {"float8": "float8_e4m3fn"}
#: Element types that hold parameters: the first of them among the inputs sets ``summary()``'s
#: memory figures.
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
DEFAULT_DTYPE = "float32"

#: Ranks an input shape may have: (N, F) up to (N, C, D, H, W).
SHAPE_RANKS = (2, 5)


def dtype_name(value: Any, param: str) -> str:
    """An element type given as its name (``"int64"``) or a torch dtype (``torch.int64``, read
    without importing torch) → its name; anything else an :class:`ArgumentError` naming ``param``."""
    name = str(value).removeprefix("torch.") if type(value).__name__ == "dtype" else value
    if not isinstance(name, str) or name not in DTYPE_BYTES:
        raise ArgumentError(param, f"expected one of {', '.join(DTYPE_BYTES)}, got {preview(value)}")
    return name


def torch_dtype_name(name: str) -> str:
    """The ``torch`` attribute of element type ``name`` (``float8`` → ``float8_e4m3fn``)."""
    return _TORCH_NAMES.get(name, name)


def size_arg(value: Any, param: str, minimum: int = 1) -> int:
    """One size given to the library, checked by :func:`~shapecalc.core.argcheck.exact_int` (an
    ``int``, numpy integers included, within torch's 64-bit sizes; bool, float, NaN, str and
    None refused, naming ``param``) and at least ``minimum``."""
    number = exact_int(param, value, "a size")
    if number < minimum:
        raise ArgumentError(param, f"expected a size ≥ {minimum}, got {number}")
    return number


def shape_arg(value: Any, param: str = "input_shape") -> Shape:
    """An input shape given to the library → a tuple of ``int`` (2 to 5 positive sizes)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ArgumentError(param, f"expected a tuple of 2 to 5 positive integers like (1, 3, 224, 224), "
                                   f"got {preview(value)}")
    items = list(value)
    low, high = SHAPE_RANKS
    if not low <= len(items) <= high:
        raise ArgumentError(param, f"expected {low} to {high} sizes (batch, channels, spatial…), "
                                   f"got {len(items)}")
    return tuple(size_arg(v, f"{param}[{i}]") for i, v in enumerate(items))


def several_shapes(value: Any) -> bool:
    """``[(1, 3, 224, 224), (1, 77)]`` (one shape per input) rather than one shape."""
    if value is None or isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return False
    items = list(value)
    return bool(items) and all(hasattr(s, "__iter__") and not isinstance(s, (str, bytes)) for s in items)


@dataclass(frozen=True, slots=True)
class Input:
    """One tensor the forward takes."""

    shape: Shape
    dtype: str = DEFAULT_DTYPE
    label: str | None = None  # the forward's argument name, when known


@dataclass(frozen=True, slots=True)
class Inputs:
    """Every tensor the forward takes, in order (at least one)."""

    items: tuple[Input, ...]

    @classmethod
    def of(cls, shapes: Any, dtypes: Sequence[Any] | Any = None, labels: Sequence[str] = (),
           *, shape_param: str = "input_shape", dtype_param: str = "input_dtypes") -> "Inputs":
        """Checked inputs from one shape or one per input, and ``dtypes``: ``None`` (float32 for
        every input), one element type for all, or one per input. Errors name the parameters."""
        if several_shapes(shapes):
            checked = [shape_arg(s, f"{shape_param}[{i}]") for i, s in enumerate(shapes)]
        else:
            checked = [shape_arg(shapes, shape_param)]
        return cls.from_checked(checked, _dtypes_arg(dtypes, len(checked), dtype_param), labels)

    @classmethod
    def from_checked(cls, shapes: Sequence[Shape], dtypes: Sequence[str] | None = None,
                     labels: Sequence[str] = ()) -> "Inputs":
        """Inputs from shapes and element types already checked (by :meth:`of` or a parser)."""
        kinds = tuple(dtypes) if dtypes else (DEFAULT_DTYPE,) * len(shapes)
        names = tuple(labels) + (None,) * (len(shapes) - len(labels))
        return cls(tuple(Input(tuple(s), k, n) for s, k, n in zip(shapes, kinds, names)))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Input]:
        return iter(self.items)

    @property
    def shapes(self) -> tuple[Shape, ...]:
        return tuple(i.shape for i in self.items)

    @property
    def dtypes(self) -> tuple[str, ...]:
        return tuple(i.dtype for i in self.items)

    @property
    def first(self) -> Shape:
        """The first input's shape (the one a single-input model has)."""
        return self.items[0].shape

    @property
    def all_default(self) -> bool:
        """Every input float32: the element types say nothing beyond the default."""
        return all(i.dtype == DEFAULT_DTYPE for i in self.items)

    def with_shapes(self, shapes: Sequence[Shape]) -> "Inputs":
        """The same element types and labels at other shapes (a size search)."""
        return Inputs(tuple(Input(tuple(s), i.dtype, i.label) for s, i in zip(shapes, self.items)))

    def labelled(self, labels: Sequence[str]) -> "Inputs":
        return Inputs(tuple(Input(i.shape, i.dtype, n) for i, n in zip(self.items, labels)))


def _dtypes_arg(values: Any, count: int, param: str) -> tuple[str, ...] | None:
    """``None`` → float32 for all; one name → every input; else one per input, each known."""
    if values is None:
        return None
    if isinstance(values, str) or type(values).__name__ == "dtype":
        names = (values,)
    elif hasattr(values, "__iter__"):
        names = tuple(values)
    else:
        raise ArgumentError(param, f"expected an element type or one per input, got {preview(values)}")
    if len(names) == 1 and count > 1:
        names = names * count
    if len(names) != count:
        raise ArgumentError(param, f"give one element type for each of the {count} input(s), "
                                   f"got {len(names)}: {preview(list(names))}")
    return tuple(dtype_name(n, param) for n in names)


def as_inputs(value: Any, dtypes: Sequence[str] | None = None) -> Inputs:
    """``value`` if it is :class:`Inputs`, else inputs from a shape or shapes already checked
    (internal callers: size searches, the engine's own tests)."""
    if isinstance(value, Inputs):
        return value
    shapes = [tuple(s) for s in value] if several_shapes(value) else [tuple(value)]
    return Inputs.from_checked(shapes, _dtypes_arg(dtypes, len(shapes), "input_dtypes"))


__all__ = ["DEFAULT_DTYPE", "DTYPE_BYTES", "FLOAT_DTYPES", "Input", "Inputs", "SHAPE_RANKS", "as_inputs",
           "dtype_name", "several_shapes", "shape_arg", "size_arg", "torch_dtype_name"]
