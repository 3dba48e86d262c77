"""``shapecalc.summary(model, input_size=...)``: torchinfo's call, answered by the engine.

Arguments keep torchinfo's names where they mean the same (``input_size``, ``input_data``,
``depth``, ``col_names``, ``dtypes``, ``mode``, ``verbose``), so migrating is changing the
import. The result is the :class:`~shapecalc.core.graph.Analysis` itself, as a
:class:`ModelSummary` whose ``repr`` is the table (as torchinfo's ``ModelStatistics``) and
which carries torchinfo's ``total_params``, ``trainable_params`` and ``total_mult_adds``.

Nothing here imports torch: shapes and dtypes are read from the objects given (``.shape``,
``.dtype``), and an ``nn.Module`` arrives with torch already imported by its owner.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from typing import Any, Iterable, Sequence

from shapecalc.core.safetext import preview
from shapecalc.core.errors import ArgumentError
from shapecalc.core.graph import Analysis, Mode
from shapecalc.core.inputs import FLOAT_DTYPES, Inputs, dtype_name, several_shapes


@dataclass(repr=False)
class ModelSummary(Analysis):
    """An analysis that remembers how :func:`summary` was asked to show it."""

    display_depth: int | None = None  # shapecalc's depth (torchinfo's minus one)
    col_names: tuple[str, ...] | None = None
    verbose: int = 1

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
        from shapecalc.output.notebook import terminal_width

        return self.table(width=terminal_width() if sys.stdout.isatty() else None).rstrip("\n")

    def __str__(self) -> str:
        return repr(self)

    def _repr_html_(self) -> str:
        from shapecalc.output.html_table import analysis_html

        return analysis_html(self, depth=self.display_depth, explain=self.verbose >= 2,
                             columns=self.col_names)

    def _repr_markdown_(self) -> str:
        from shapecalc.output.formats import to_markdown

        return to_markdown(self, self.display_depth)


def _in_notebook() -> bool:
    """Running in a Jupyter kernel (torchinfo's rule: then ``verbose`` defaults to 0)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _inputs(src: Any, input_size: Any, input_data: Any, dtypes: Any) -> Inputs:
    """The forward's inputs from either argument (shapes and, from tensors, element types),
    with ``dtypes`` when given; errors name this function's parameters."""
    if input_size is not None and input_data is not None:
        raise ArgumentError("input_size, input_data", "give one of them, not both")
    kinds = None
    if input_data is not None:
        if isinstance(input_data, dict):
            raise ArgumentError("input_data", "keyword inputs (a dict) are not supported; pass tensors")
        items = list(input_data) if isinstance(input_data, (list, tuple)) else [input_data]
        if not items or not all(hasattr(t, "shape") and hasattr(t, "dtype") for t in items):
            raise ArgumentError("input_data", "expected a tensor or a list of tensors")
        shapes: Any = [t.shape for t in items] if len(items) > 1 else items[0].shape
        kinds = [t.dtype for t in items]
        shape_param = dtype_param = "input_data"
    else:
        shapes, shape_param, dtype_param = input_size, "input_size", "dtypes"
    if dtypes is not None:
        if isinstance(dtypes, (str, bytes)) or not hasattr(dtypes, "__iter__"):
            raise ArgumentError("dtypes", f"expected a list with one dtype per input, got {preview(dtypes)}")
        kinds, dtype_param = [dtype_name(d, "dtypes") for d in dtypes], "dtypes"
        count = len(shapes) if several_shapes(shapes) else 1
        if shapes is not None and len(kinds) != count:
            raise ArgumentError("dtypes", f"give one per input ({count}), got {len(kinds)}")
    return src.inputs(shapes, kinds, shape_param=shape_param, dtype_param=dtype_param)


def summary(model: Any, input_size: Sequence[int] | Sequence[Sequence[int]] | None = None,
            input_data: Any = None, depth: int = 3, col_names: Iterable[str] | None = None,
            dtypes: Sequence[Any] | None = None, mode: str = "eval",
            verbose: int | None = None) -> ModelSummary:
    """torchinfo's ``summary()``: every layer's shapes, parameters and MACs, without a forward.

    ``model``: an ``nn.Module`` (or anything :func:`shapecalc.analyze` takes: a zoo name, a
    spec). ``input_size``: the input shape with its batch dimension, e.g. ``(1, 3, 224, 224)``,
    or one shape per input of a forward that takes several tensors, e.g.
    ``[(1, 3, 224, 224), (1, 77)]`` (``None``: the model's default, for zoo models);
    ``input_data``: a tensor or a list of tensors instead (only their shapes and dtypes are
    read). ``depth``: nesting levels to show, counted as torchinfo does (1: the model's direct
    children). ``col_names``: columns in order, torchinfo's names (``input_size``,
    ``output_size``, ``num_params``, ``params_percent``, ``kernel_size``, ``mult_adds``,
    ``trainable``) plus ``receptive_field`` and ``notes``; default: output shape, params, MACs,
    receptive field, notes. ``dtypes``: the element type of each input (``torch.long`` or
    ``"int64"`` for token ids, ``torch.float16``…); the first floating type among them sets
    the memory figures. ``mode``: ``"eval"`` or ``"train"``, as torchinfo (the module's own
    flags are restored afterwards). ``verbose``: 0 quiet, 1 print the table, 2 also the
    arithmetic of every size; default 1, or 0 in a notebook (where the returned object
    displays itself).

    Returns a :class:`ModelSummary` (an :class:`~shapecalc.core.graph.Analysis`): ``repr`` is the
    table; ``total_params``, ``trainable_params``, ``total_mult_adds`` as torchinfo names them.
    """
    from shapecalc.models.api import analyze, load_model

    mode = Mode.of(mode)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ArgumentError("depth", f"expected an integer ≥ 0, got {preview(depth)}")
    if verbose is not None and verbose not in (0, 1, 2):
        raise ArgumentError("verbose", f"choose 0, 1 or 2, got {preview(verbose)}")
    columns = None
    if col_names is not None:
        from shapecalc.output.columns import parse_columns

        if isinstance(col_names, (str, bytes)) or not hasattr(col_names, "__iter__"):
            raise ArgumentError("col_names", f"expected a list of column names like "
                                f"('output_size', 'num_params'), got {preview(col_names)}")
        columns = parse_columns(list(col_names), "col_names")
    src = load_model(model)
    inputs = _inputs(src, input_size, input_data, dtypes)
    dtype = next((k for k in inputs.dtypes if k in FLOAT_DTYPES), "float32")
    # analyze() puts an nn.Module in ``mode`` while it is read and restores every flag after.
    try:
        result = analyze(src, inputs, dtype, mode=mode)
    except ArgumentError as err:  # the engine's count of inputs → this function's parameter
        if err.param.startswith("input_shape"):
            raise ArgumentError("input_data" if input_data is not None else "input_size",
                                err.detail) from None
        raise
    values = {f.name: getattr(result, f.name) for f in fields(Analysis)}
    out = ModelSummary(**values, display_depth=max(depth - 1, 0), col_names=columns,
                       verbose=(0 if _in_notebook() else 1) if verbose is None else verbose)
    if out.verbose:
        print(repr(out))
    return out


__all__ = ["ModelSummary", "summary"]
