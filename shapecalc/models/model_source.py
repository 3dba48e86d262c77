"""The loaded-model value: what every way of naming a model (zoo name, spec file, Python target,
``nn.Module``) resolves to, before any input shape is chosen.

It lives low in the package (it imports only the graph and block types) so that the resolver
(``sources``), the torch bridge and the API can all return or accept it without importing
each other. Everything that asks "which input?" or "which graph at this input?" asks it here,
so the rule is written once: :meth:`ModelSource.input_shape`, :meth:`ModelSource.graph_at`,
:meth:`ModelSource.require_scannable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shapecalc.core.blocks import Block
from shapecalc.core.errors import ArgumentError, SpecError, user_code
from shapecalc.core.graph import Graph
from shapecalc.core.inputs import SHAPE_RANKS, Inputs, several_shapes, shape_arg, size_arg
from shapecalc.core.layers import Shape


#: The MODEL forms that name an architecture rather than a file or a target. Here, low in the
#: package, so that resolving ``alexnet`` tells them apart without importing the timm and
#: Hugging Face modules (``shapecalc show`` stays quick).
TIMM_PREFIX = "timm:"
HF_PREFIX = "hf:"


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
    #: Shapes given without types take these too, so ``input_shape=(1, 256)`` stays token ids.
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

    def inputs(self, shapes: Any = None, dtypes: Any = None, *, shape_param: str = "input_shape",
               dtype_param: str = "input_dtypes") -> Inputs:
        """The checked :class:`Inputs` for one shape or one per input (``None``: the model's
        default) and their element types (see :meth:`Inputs.of`); errors name the parameters."""
        if shapes is None:
            shapes = self.default_shapes(shape_param)
            shapes = shapes[0] if len(shapes) == 1 else shapes
        count = len(list(shapes)) if several_shapes(shapes) else 1
        if dtypes is None and self.default_dtypes is not None and len(self.default_dtypes) == count:
            dtypes = self.default_dtypes
        return Inputs.of(shapes, dtypes, shape_param=shape_param, dtype_param=dtype_param)

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

    @classmethod
    def of_import(cls, imp: Any, source: str = "") -> "ModelSource":
        """The source of an imported ``nn.Module`` (a ``torch_bridge.fx_import.TorchImport``)."""
        return cls(imp.name, imp.graph, imp.default_input, imp.spec, imp.description, source,
                   torch_import=imp, scannable=imp.scannable)

    def require_scannable(self, what: str) -> None:
        """Refuse a question about many sizes (``what``: "an input range") for a model whose
        graph was recorded at one size."""
        if not self.scannable:
            raise SpecError(f"{self.name} was recorded at one input size (its forward is not "
                            f"traceable by torch.fx); {what} cannot be scanned")


def module_source(module: Any, name: str | None = None, source: str = "",
                  mode: str = "eval") -> ModelSource:
    """Import ``module`` (chain, else fx, else hooks) as a :class:`ModelSource`."""
    from shapecalc.torch_bridge.fx_import import import_module

    return ModelSource.of_import(import_module(module, name, mode), source)


__all__ = ["ModelSource", "module_source", "SHAPE_RANKS", "shape_arg", "size_arg"]
