"""The loaded-model value: what every way of naming a model (zoo name, spec file, Python target,
``nn.Module``) resolves to, before any input shape is chosen.

It lives low in the package (it imports only the graph and block types) so that the resolver
(``sources``), the torch bridge and the API can all return or accept it without importing
each other. Everything that asks "which input?" or "which graph at this input?" asks it here,
so the rule is written once: :meth:`ModelSource.input_shape`, :meth:`ModelSource.graph_at`,
:meth:`ModelSource.require_scannable`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from shapecalc.core.argcheck import exact_int
from shapecalc.core.blocks import Block
from shapecalc.core.errors import ArgumentError, SpecError
from shapecalc.core.graph import Graph
from shapecalc.core.layers import Shape

#: Ranks an input shape may have: (N, F) up to (N, C, D, H, W).
SHAPE_RANKS = (2, 5)
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
                                   f"got {value!r}")
    items = list(value)
    low, high = SHAPE_RANKS
    if not low <= len(items) <= high:
        raise ArgumentError(param, f"expected {low} to {high} sizes (batch, channels, spatial…), "
                                   f"got {len(items)}")
    return tuple(size_arg(v, f"{param}[{i}]") for i, v in enumerate(items))


@contextmanager
def user_code(what: str) -> Iterator[None]:
    """Turn ``SystemExit``/``KeyboardInterrupt`` raised while the user's code runs (``what``:
    "importing net.py") into one-line errors instead of a silent exit or a traceback."""
    try:
        yield
    except SystemExit as err:
        code = f" {err.code}" if err.code is not None else ""
        raise SpecError(f"{what} raised SystemExit{code}; a model file must build a model, "
                        "not exit") from None
    except KeyboardInterrupt:
        raise SpecError(f"{what} raised KeyboardInterrupt (interrupted)") from None



@dataclass
class ModelSource:
    """A model ready for analysis: its graph, the spec tree (when it has one) and its default input."""

    name: str
    #: The model's graph. ``None`` only for a model that must be recorded per input size
    #: (``scannable`` is False) and has no default input to record it at.
    graph: Graph | None
    default_input: Shape | None
    spec: Block | None = None
    description: str = ""
    source: str = ""
    #: How an ``nn.Module`` was read (``torch_bridge.fx_import.TorchImport``), for --verify and
    #: for recording the graph again at another size; ``None`` for zoo models and spec files.
    torch_import: Any = None
    #: False when the graph was recorded by running the model at one input size (a forward
    #: torch.fx cannot trace): other sizes give other graphs, so sizes cannot be scanned.
    scannable: bool = True
    #: Element types of the default inputs (``("int64",)`` for token ids); ``None``: float32.
    #: Shapes given without types take these too, so ``--input 1x256`` stays token ids.
    default_dtypes: tuple[str, ...] | None = None
    #: Default shapes of the forward's further inputs (an encoder-decoder's decoder tokens).
    more_inputs: tuple[Shape, ...] = ()

    def input_shape(self, given: Any = None, param: str = "input_shape") -> Shape:
        """``given`` (validated, numpy integers made ``int``), else the model's default input."""
        if given is not None:
            return shape_arg(given, param)
        if self.default_input is None:
            raise ArgumentError(param, f"{self.name} has no default input shape; give one")
        return tuple(self.default_input)

    def default_shapes(self, param: str = "input_shape") -> list[Shape]:
        """Every input's default shape, in the forward's order."""
        return [self.input_shape(None, param), *self.more_inputs]

    def graph_at(self, shape: Shape) -> Graph:
        """The graph to analyse at ``shape``: the one graph, or one recorded at that size."""
        if self.scannable:
            assert self.graph is not None
            return self.graph
        with user_code(f"running {self.name}.forward"):
            return self.torch_import.graph_at(tuple(shape))

    def require_scannable(self, what: str) -> None:
        """Refuse a question about many sizes (``what``: "an input range") for a model whose
        graph was recorded at one size."""
        if not self.scannable:
            raise SpecError(f"{self.name} was recorded at one input size (its forward is not "
                            f"traceable by torch.fx); {what} cannot be scanned")


__all__ = ["ModelSource", "SHAPE_RANKS", "shape_arg", "size_arg", "user_code"]
