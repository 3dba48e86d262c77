"""``shapecalc.summary(model, input_size=...)``: torchinfo's call, answered by the engine.

Arguments keep torchinfo's names where they mean the same (``input_size``, ``input_data``,
``depth``, ``col_names``, ``dtypes``, ``mode``, ``verbose``), so migrating is changing the
import. The result is the :class:`~shapecalc.graph.Analysis` itself, as a
:class:`ModelSummary` whose ``repr`` is the table (as torchinfo's ``ModelStatistics``) and
which carries torchinfo's ``total_params``, ``trainable_params`` and ``total_mult_adds``.

Nothing here imports torch: shapes and dtypes are read from the objects given (``.shape``,
``.dtype``), and an ``nn.Module`` arrives with torch already imported by its owner.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, Iterable, Sequence

from .errors import ArgumentError
from .graph import Analysis
from .model_source import shape_arg


@dataclass(repr=False)
class ModelSummary(Analysis):
    """An analysis that remembers how :func:`summary` was asked to show it."""

    display_depth: int | None = None  # shapecalc's depth (torchinfo's minus one)
    col_names: tuple[str, ...] | None = None
    verbose: int = 1
    #: Node name → parameters with requires_grad False (an nn.Module's frozen layers).
    frozen_by_node: dict[str, int] = field(default_factory=dict)
    frozen_total: int = 0

    @property
    def trainable_params(self) -> int:
        """Parameters that ``requires_grad`` (torchinfo's ``trainable_params``)."""
        return self.total_params - self.frozen_total

    @property
    def total_mult_adds(self) -> int:
        """torchinfo's name for the multiply-accumulates (same convention: see the footer)."""
        return self.total_macs

    def table(self, depth: int | None = None, explain: bool | None = None,
              columns: Sequence[str] | None = None, width: int | None = None,
              checks: Iterable | None = None) -> str:
        """The table as :meth:`Analysis.table` draws it, with ``summary()``'s choices as defaults."""
        return super().table(
            depth=self.display_depth if depth is None else depth,
            explain=self.verbose >= 2 if explain is None else explain,
            columns=self.col_names if columns is None else columns, width=width, checks=checks)

    def __repr__(self) -> str:
        """The table, as torchinfo's ``ModelStatistics``; fitted when printed to a terminal."""
        from .render.notebook import terminal_width

        return self.table(width=terminal_width() if sys.stdout.isatty() else None).rstrip("\n")

    def __str__(self) -> str:
        return repr(self)

    def _repr_html_(self) -> str:
        from .render.html_table import analysis_html

        return analysis_html(self, depth=self.display_depth, explain=self.verbose >= 2,
                             columns=self.col_names)

    def _repr_markdown_(self) -> str:
        from .render.formats import to_markdown

        return to_markdown(self, self.display_depth)


def _in_notebook() -> bool:
    """Running in a Jupyter kernel (torchinfo's rule: then ``verbose`` defaults to 0)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _dtype_name(value: Any, option: str) -> str:
    """``torch.float16`` or ``"float16"`` → ``"float16"`` (without importing torch)."""
    from .graph import DTYPE_BYTES

    name = str(value).removeprefix("torch.")
    if name not in DTYPE_BYTES:
        raise ArgumentError(option, f"unknown dtype {value!r}; choose from {', '.join(DTYPE_BYTES)}")
    return name


def _inputs(input_size: Any, input_data: Any) -> tuple[list[tuple[int, ...]], list[str] | None]:
    """Shapes (and dtypes, from tensors) of the forward's inputs, from either argument."""
    if input_size is not None and input_data is not None:
        raise ArgumentError("input_size, input_data", "give one of them, not both")
    if input_data is not None:
        if isinstance(input_data, dict):
            raise ArgumentError("input_data", "keyword inputs (a dict) are not supported; pass tensors")
        items = list(input_data) if isinstance(input_data, (list, tuple)) else [input_data]
        if not items or not all(hasattr(t, "shape") and hasattr(t, "dtype") for t in items):
            raise ArgumentError("input_data", "expected a tensor or a list of tensors")
        return ([shape_arg(t.shape, "input_data") for t in items],
                [_dtype_name(t.dtype, "input_data") for t in items])
    if input_size is None:
        return [], None
    if isinstance(input_size, (list, tuple)) and input_size and all(
            isinstance(s, (list, tuple)) for s in input_size):
        return [shape_arg(s, "input_size") for s in input_size], None  # several inputs
    return [shape_arg(input_size, "input_size")], None


@contextmanager
def _mode(model: Any, mode: str):
    """An nn.Module in ``mode`` while it is analysed (torchinfo sets it too), then as it was."""
    from .sources import is_torch_module

    if not is_torch_module(model):
        yield
        return
    was_training = model.training
    model.train(mode == "train")
    try:
        yield
    finally:
        model.train(was_training)


def _frozen(model: Any, analysis: Analysis) -> tuple[dict[str, int], int]:
    """Parameters with requires_grad False: per node (by its module) and in all (each once)."""
    from .sources import is_torch_module

    if not is_torch_module(model):
        return {}, 0
    total = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    per_node: dict[str, int] = {}
    if total and analysis.graph is not None:
        for node in analysis.graph.nodes:
            if node.module is None:
                continue
            try:
                module = model.get_submodule(node.module)
            except AttributeError:  # a functional call on the root's own parameters
                continue
            held = sum(p.numel() for p in module.parameters() if not p.requires_grad)
            if held:
                per_node[node.name] = held
    return per_node, total


def summary(model: Any, input_size: Sequence[int] | Sequence[Sequence[int]] | None = None,
            input_data: Any = None, depth: int = 3, col_names: Iterable[str] | None = None,
            dtypes: Sequence[Any] | None = None, mode: str = "eval",
            verbose: int | None = None) -> ModelSummary:
    """torchinfo's ``summary()``: every layer's shapes, parameters and MACs, without a forward.

    ``model``: an ``nn.Module`` (or anything :func:`shapecalc.analyze` takes: a zoo name, a
    spec). ``input_size``: the input shape with its batch dimension, e.g. ``(1, 3, 224, 224)``
    (``None``: the model's default, for zoo models); ``input_data``: a tensor instead (only
    its shape and dtype are read). ``depth``: nesting levels to show, counted as torchinfo
    does (1: the model's direct children). ``col_names``: columns in order, torchinfo's names
    (``input_size``, ``output_size``, ``num_params``, ``params_percent``, ``kernel_size``,
    ``mult_adds``, ``trainable``) plus ``receptive_field`` and ``notes``; default: output
    shape, params, MACs, receptive field, notes. ``dtypes``: the element type of each input
    (``torch.float16`` or ``"float16"``; it sets the memory figures). ``mode``: ``"eval"`` or
    ``"train"``, as torchinfo. ``verbose``: 0 quiet, 1 print the table, 2 also the arithmetic
    of every size; default 1, or 0 in a notebook (where the returned object displays itself).

    Returns a :class:`ModelSummary` (an :class:`~shapecalc.graph.Analysis`): ``repr`` is the
    table; ``total_params``, ``trainable_params``, ``total_mult_adds`` as torchinfo names them.
    """
    from .api import analyze, load_model

    if mode not in ("eval", "train"):
        raise ArgumentError("mode", f"choose 'eval' or 'train', got {mode!r}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ArgumentError("depth", f"expected an integer ≥ 0, got {depth!r}")
    if verbose is not None and verbose not in (0, 1, 2):
        raise ArgumentError("verbose", f"choose 0, 1 or 2, got {verbose!r}")
    columns = None
    if col_names is not None:
        from .render.columns import parse_columns

        columns = parse_columns(list(col_names), "col_names")
    shapes, kinds = _inputs(input_size, input_data)
    if dtypes is not None:
        kinds = [_dtype_name(d, "dtypes") for d in dtypes]
        if shapes and len(kinds) != len(shapes):
            raise ArgumentError("dtypes", f"give one per input ({len(shapes)}), got {len(kinds)}")
    if len(shapes) > 1:
        raise ArgumentError("input_size", f"this model takes one input; got {len(shapes)} shapes")
    src = load_model(model)
    dtype = kinds[0] if kinds else "float32"
    with _mode(model, mode):
        result = analyze(src, shapes[0] if shapes else None, dtype, mode=mode)
    per_node, frozen = _frozen(model, result)
    values = {f.name: getattr(result, f.name) for f in fields(Analysis)}
    out = ModelSummary(**values, display_depth=max(depth - 1, 0), col_names=columns,
                       verbose=(0 if _in_notebook() else 1) if verbose is None else verbose,
                       frozen_by_node=per_node, frozen_total=frozen)
    if out.verbose:
        print(repr(out))
    return out


__all__ = ["ModelSummary", "summary"]
