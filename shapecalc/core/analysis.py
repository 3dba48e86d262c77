"""What one analysis pass says about a model: a :class:`Record` per node and block, and the
:class:`Analysis` that holds them with the totals, outputs and notes.

These are plain results: the pass that makes them lives in :mod:`shapecalc.core.graph`, and every
output format reaches them through the renderer registry (this module imports no renderer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from math import prod
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from shapecalc.core.argcheck import flag
from shapecalc.core.errors import ArgumentError, UnknownName
from shapecalc.core.inputs import DTYPE_BYTES, Inputs
from shapecalc.core.layers import RF, Layer, Shape
from shapecalc.core.notes import Note, NoteKind
from shapecalc.core.registry import check_options, render
from shapecalc.core.safetext import preview

if TYPE_CHECKING:
    from shapecalc.core.graph import Graph



class Mode(StrEnum):
    """The mode an ``nn.Module`` is read in: ``eval`` (as torchinfo) or ``train`` (training-only
    branches such as auxiliary heads included)."""

    EVAL = "eval"
    TRAIN = "train"

    @classmethod
    def of(cls, value: object, param: str = "mode") -> "Mode":
        """``value`` (a Mode or its name) as a Mode; anything else an error naming ``param``."""
        try:
            return cls(value)
        except ValueError:
            raise ArgumentError(param, f"choose 'eval' or 'train', got {value!r}") from None

    @property
    def training(self) -> bool:
        return self is Mode.TRAIN

    @classmethod
    def of_training(cls, training: bool) -> "Mode":
        return cls.TRAIN if training else cls.EVAL


@dataclass(slots=True)
class Record:
    """What the analysis says about one node (or one block, when ``is_block``)."""

    name: str
    type: str
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    params: int
    macs: int | None  # None: neither a rule nor torch's counter gives it (shown as "?")
    rf: RF
    notes: list[Note]
    depth: int
    is_block: bool = False
    layer: Layer | None = None  # resolved: inferred sizes filled in
    shared: bool = False  # weights shared with an earlier node (counted once)
    label: str | None = None  # blocks: what kind of block ("Residual", "Inception")
    #: Blocks returning several values (a tuple, HRNet's list of branches): each one's shape.
    output_shapes: tuple[Shape, ...] = ()

    @property
    def description(self) -> str:
        """The layer with its arguments; computed on demand because most rows are never shown."""
        if self.layer is None:
            return self.label or self.type
        return self.layer.describe()

    @property
    def measured(self) -> bool:
        """The shape came from running torch (the layer's type says so), not from a formula."""
        return self.layer is not None and self.layer.measured

    @property
    def origin(self) -> str:
        """``measured`` or ``derived``, as the JSON document and the table say it."""
        return "measured" if self.measured else "derived"

    @property
    def input_shape(self) -> Shape:
        return self.input_shapes[0] if self.input_shapes else ()

    def explain(self) -> list[str]:
        """The arithmetic behind this row: its output size, or, for a row whose size needs none
        (a Linear, a norm layer), its parameters and MACs."""
        if self.layer is None:
            return []
        return (self.layer.explain(self.output_shape, *self.input_shapes)
                or self.layer.explain_cost(self.output_shape, *self.input_shapes))


@dataclass
class Analysis:
    """Per-node records in execution order, block records, and totals."""

    model: str
    #: Every input (several for a forward with several tensor arguments): shape, element type, label.
    inputs: Inputs
    output_shape: Shape
    records: list[Record]
    blocks: dict[str, Record]
    total_params: int
    total_macs: int
    dtype: str = "float32"
    graph: Graph | None = None
    #: Every value the forward returns, as (label, shape); ``output_shape`` is the first.
    outputs: list[tuple[str, Shape]] = field(default_factory=list)
    #: Facts about the whole model (typed Notes): hook fallback and why, unused parameters, …
    notes: list = field(default_factory=list)
    #: Of ``total_params``, those with ``requires_grad`` False (a frozen backbone).
    frozen_params: int = 0
    mode: Mode | None = None  # how an nn.Module was read; None for a spec
    #: Measures the tensors autograd saves for a layer without a rule (``Layer.saved`` is
    #: None): set by the torch bridge for a model that came from torch; ``None`` for a spec.
    saved_measure: Any = field(default=None, repr=False, compare=False)
    #: ``saved_run(inputs, settings)``: one recorded forward's storages and saved tensors per
    #: node (:class:`~shapecalc.core.memory.MeasuredRun`), for a graph recorded with hooks,
    #: whose functions have no rules; ``None`` for other graphs.
    saved_run: Any = field(default=None, repr=False, compare=False)
    #: Nodes whose MACs are unknown; ``total_macs`` is then a lower bound (the known part).
    uncounted: list[str] = field(default_factory=list)

    @property
    def input_shape(self) -> Shape:
        """The first input's shape (the only one of most models)."""
        return self.inputs.first

    @property
    def input_shapes(self) -> tuple[Shape, ...]:
        return self.inputs.shapes

    @property
    def input_dtypes(self) -> tuple[str, ...]:
        return self.inputs.dtypes

    @property
    def trainable_params(self) -> int:
        return self.total_params - self.frozen_params

    @property
    def total_flops(self) -> int:
        return 2 * self.total_macs

    @property
    def bytes_per_element(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def param_bytes(self) -> int:
        return self.total_params * self.bytes_per_element

    @property
    def activation_bytes(self) -> int:
        """Every node's output held at once (what a training forward keeps for backward)."""
        return sum(prod(r.output_shape) for r in self.records) * self.bytes_per_element

    @property
    def input_bytes(self) -> int:
        """Every input at its own element type (token ids are int64 whatever ``dtype`` says)."""
        return sum(prod(i.shape) * DTYPE_BYTES[i.dtype] for i in self.inputs)

    def memory(self, batch: int | None = None, optimizer: str = "adam", dtype: str | None = None,
               amp: bool = False, mode: str = "train", device: str | None = None) -> Any:
        """What one training step holds (:class:`shapecalc.core.memory.MemoryReport`): per
        layer the parameter, gradient and optimizer-state bytes and the activations autograd
        saves for backward; totals and the peaks of a training step and of inference.

        ``batch`` sets every input's first dimension (default: as analysed); ``dtype``
        (float32, bfloat16, float16; default this analysis's if it is one of them) is the
        parameters' and activations'; ``amp`` is bfloat16 autocast over float32 weights;
        ``mode`` is the module mode of the step (eval: dropout off, batch norm on running
        statistics); ``device`` (a name of :data:`shapecalc.core.roofline.DEVICES`, default
        ``h100`` as ``shapecalc memory``) says whether the step runs on a GPU, where dropout
        and norms keep other tensors than on a CPU.
        """
        from shapecalc.core import memory, roofline

        kind = dtype if dtype is not None else (self.dtype if self.dtype in memory.TRAIN_DTYPES
                                                else "float32")
        dev = roofline.device(roofline.DEFAULT_DEVICE if device is None else device)
        setup = memory.settings(kind, flag("amp", amp), optimizer, mode, dev.cuda)
        return memory.estimate(memory.at_batch(self, batch), setup, self.saved_measure, dev.name)

    def record(self, name: str) -> Record:
        for r in self.records:
            if r.name == name:
                return r
        if isinstance(name, str) and name in self.blocks:
            return self.blocks[name]
        raise UnknownName("name", f"no node or block named {preview(name)} in {preview(self.model)}")

    def blocks_of(self, name: str) -> tuple[str, ...]:
        """The blocks enclosing node or block ``name``, outermost first (the graph's tree)."""
        return self.graph.blocks_of(name) if self.graph is not None else ()

    def parent(self, name: str) -> str | None:
        """The innermost block holding ``name`` (``None`` at the top level)."""
        return self.graph.parent(name) if self.graph is not None else None

    def is_glue(self, record: Record) -> bool:
        """Whether ``record`` is an imported module's functional glue: an add, a view, a mask
        that the forward's own code computes, with no weights of its own, inside a module
        (whose block row already counts its MACs) or anywhere in a forward recorded with
        hooks (where it is what torch ran, not a step the user wrote). A traced model's own
        top-level steps (``torch.cat`` of two branches) and a spec's merges stay rows."""
        graph = self.graph
        if record.is_block or record.params or graph is None or graph.mode is None:
            return False
        if record.macs is None or (record.macs and not self.blocks_of(record.name)):
            return False  # unknown MACs show as "?", and work outside any block has no other row
        try:
            if graph.node(record.name).module is not None:
                return False
        except KeyError:
            return False
        return bool(self.blocks_of(record.name)) or any(
            n.kind is NoteKind.HOOK_FALLBACK for n in graph.notes)

    def rows(self, depth: int | None = None, ops: bool = True) -> Iterator[Record]:
        """Blocks and layers in tree order (a block's row before its children's), cut at
        ``depth``; ``ops=False`` leaves out functional glue (:meth:`is_glue`)."""
        check_options({"depth": depth, "ops": ops})
        opened: set[str] = set()
        for rec in self.records:
            for prefix in self.blocks_of(rec.name):
                if prefix not in opened:
                    opened.add(prefix)
                    block = self.blocks[prefix]
                    if depth is None or block.depth <= depth:
                        yield block
            if (depth is None or rec.depth <= depth) and (ops or not self.is_glue(rec)):
                yield rec

    # Output formats live in the registry (core/registry.py, filled by the renderers of
    # shapecalc.output): the core looks them up by name and never imports a renderer.
    def render(self, fmt: str, **options: Any) -> Any:
        """This analysis in output format ``fmt`` with that format's keyword options: ``table``,
        ``json``, ``csv``, ``markdown``, ``dot``, ``svg``, ``png``, ``pdf``, ``dict``,
        ``drawing`` … (``shapecalc.core.registry.names()`` lists them all)."""
        return render(self, fmt, **options)

    def table(self, depth: int | None = None, explain: bool = False,
              columns: Sequence[str] | None = None, width: int | None = None,
              checks: Iterable | None = None) -> str:
        """The per-layer table as plain text (what ``shapecalc show`` prints when piped).

        ``depth`` collapses blocks nested deeper; ``explain`` adds the arithmetic under each
        row; ``columns`` picks and orders data columns (torchinfo's ``col_names``: see
        :data:`shapecalc.output.columns.COLUMNS`); ``width`` fits the table to that many
        characters (``None``: the full table); ``checks`` adds ``verify``'s torch column.
        """
        return self.render("table", depth=depth, explain=explain, checks=checks,
                           columns=columns, width=width)

    def to_json(self, indent: int | None = 2, explain: bool = False) -> str:
        """The JSON document (``explain``: each layer's arithmetic too)."""
        return self.render("json", indent=indent, explain=explain)

    def to_dict(self, explain: bool = False) -> dict:
        """The JSON document as Python data."""
        return self.render("dict", explain=explain)

    def to_dot(self, rankdir: str = "TB", depth: int | None = None, expand: bool = False) -> str:
        """Graphviz DOT source of the analysed graph (shapes on the edges); ``depth`` collapses
        deeper blocks, ``expand`` draws every layer of a big model."""
        return self.render("dot", rankdir=rankdir, depth=depth, expand=expand)

    def draw(self, rankdir: str = "TB", depth: int | None = None, expand: bool = False,
             dot_timeout: float | None = None) -> Any:
        """A drawing that displays inline as SVG in Jupyter and saves with ``.save(path)``
        (``.svg``, ``.png``, ``.pdf``, ``.dot``); options as for :meth:`to_dot`. ``dot_timeout``:
        seconds Graphviz may take for each picture (default 60)."""
        options = {} if dot_timeout is None else {"dot_timeout": dot_timeout}
        return self.render("drawing", rankdir=rankdir, depth=depth, expand=expand, **options)

    # Display: a one-line repr; the table in terminals, IPython and Jupyter (output/notebook.py,
    # output/html_table.py), reached through the registry like every other format.
    def __repr__(self) -> str:
        """One line: model, input → output and totals (the table is ``str()`` / ``table()``)."""
        return self.render("repr")

    def __str__(self) -> str:
        return self.table()

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        """IPython: the table, fitted to the terminal IPython runs in."""
        import shutil

        if cycle:
            printer.text(repr(self))
        else:
            printer.text(self.table(width=shutil.get_terminal_size((80, 24)).columns).rstrip("\n"))

    def _repr_html_(self) -> str:
        """Jupyter: the table, totals and notes as a styled HTML table (light and dark themes)."""
        return self.render("html_table")

    def _repr_markdown_(self) -> str:
        return self.render("markdown")


__all__ = ["DTYPE_BYTES", "Analysis", "Mode", "Record"]
