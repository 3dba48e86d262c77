"""Running a user's module (or one op of it) on the meta device, without touching its weights.

The meta device gives shapes without memory or compute. A module is never moved there in
place (``module.to("meta")`` would destroy the user's weights): its parameters and buffers are
swapped for meta stand-ins for the duration of one call with ``torch.func.functional_call``,
in eval mode so that batch-statistics layers accept a batch of one, and every flag is restored.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, ClassVar, Iterable, Iterator

from shapecalc.core.errors import ShapeError, SpecError
from shapecalc.core.inputs import torch_dtype_name
from shapecalc.core.layers import Layer, LayerKind, Shape
from shapecalc.core.notes import Note, text_note


def torch_module():
    try:
        import torch
    except ImportError:  # pragma: no cover - only without the extra
        from shapecalc.core.extras import missing

        raise missing("analysing an nn.Module") from None
    return torch


def meta_state(module, dtype: Any = None, grad: bool = False) -> dict[str, Any]:
    """Meta stand-ins for every parameter and buffer (shared ones under each of their names).
    ``dtype``: floating ones in this element type (a bfloat16 step); ``grad``: trainable
    parameters' stand-ins require a gradient, so that autograd records what it saves."""
    return state_on(module, "meta", dtype, grad)


def state_on(module, device: Any, dtype: Any = None, grad: bool = False) -> dict[str, Any]:
    """Every parameter and buffer on ``device`` for :func:`torch.func.functional_call`: empty
    stand-ins on meta, copies elsewhere, so the caller's module is never moved (shared tensors
    stay one tensor under each of their names)."""
    torch = torch_module()
    on_meta = torch.device(device).type == "meta"
    state: dict[str, Any] = {}
    made: dict[int, Any] = {}
    items = list(module.named_parameters(remove_duplicate=False)) + list(
        module.named_buffers(remove_duplicate=False))
    for name, value in items:
        if value is None:
            continue
        if isinstance(value, torch.nn.parameter.UninitializedTensorMixin):
            raise SpecError(
                f"'{name}' belongs to a lazy module that has not run yet; run one forward "
                "(model(torch.zeros(shape))) before measuring it with torch"
            )
        # Tied weights (one tensor under two names) must stay one tensor for functional_call.
        if id(value) not in made:
            kind = dtype if dtype is not None and value.is_floating_point() else value.dtype
            if on_meta:
                made[id(value)] = stand_in = torch.empty_like(value, device="meta", dtype=kind)
                if grad and isinstance(value, torch.nn.Parameter) and value.requires_grad:
                    stand_in.requires_grad_()
                # A forward's own code may read it (``self.gate_up_proj[ids]``): the hook
                # recorder sees the stand-in and names the parameter it stands for by this id.
                stand_in.shapecalc_stands_for = id(value)
            else:
                made[id(value)] = value.detach().to(device)
        state[name] = made[id(value)]
    return state


@contextmanager
def run_mode(module, training: bool, modules: list | None = None) -> Iterator[None]:
    """Eval (default, as torchinfo) or train mode for one trace or run, then every flag back.

    Train mode is for the user's own branches (``if self.training: aux = ...``); torch's own
    modules stay in eval, as their shapes do not depend on it and BatchNorm refuses a batch of
    one while training. ``modules``: ``module.modules()``, where already read.
    """
    nn = torch_module().nn
    flags = [(m, m.training) for m in (module.modules() if modules is None else modules)]
    if not training and not any(flag for _, flag in flags):
        # Already all in eval mode (as torchinfo's users and the corpus leave a model): no flag
        # to set or put back, and no train() override to call again (transformers' models
        # have one, whose recursion cost 0.17 ms of a small Llama's analysis).
        yield
        return

    def set_flag(m: Any, flag: bool) -> None:
        # Module.__setattr__ ends in object.__setattr__ for a bool; going there directly saves
        # a third of the time on deep models. A module with its own __setattr__ goes through it.
        if type(m).__setattr__ is nn.Module.__setattr__:
            object.__setattr__(m, "training", flag)
        else:
            m.training = flag

    own_train: set[int] = set()  # modules below a train() override: that override decides
    for m, _ in flags:  # module.eval(), without its recursion through every level
        if id(m) in own_train:
            continue
        if type(m).train is not nn.Module.train:
            m.train(False)  # the model's own train() (freezing BatchNorm, say) runs as usual
            own_train.update(id(sub) for sub in m.modules())
        elif m.training:
            set_flag(m, False)
    if training:
        for m, _ in flags:
            if not type(m).__module__.startswith("torch.nn"):
                set_flag(m, True)
    try:
        yield
    finally:
        for m, flag in flags:
            if m.training is not flag:
                set_flag(m, flag)


def has_uninitialized(module, tensors: Iterable[Any] | None = None) -> bool:
    """Whether a lazy module in ``module`` has not made its weights yet; ``tensors``: its
    parameters and buffers, where the caller has already read them."""
    torch = torch_module()
    mixin = torch.nn.parameter.UninitializedTensorMixin
    if tensors is None:
        tensors = list(module.parameters()) + list(module.buffers())
    return any(isinstance(t, mixin) for t in tensors)


def meta_clone(module):
    """A copy of ``module`` whose every parameter and buffer is a meta stand-in (no real copy).

    ``deepcopy`` is handed the stand-ins through its memo, so no weight is ever copied, and
    uninitialized lazy tensors (which refuse to be copied) become fresh meta ones.
    """
    import copy

    torch = torch_module()
    nn = torch.nn
    mixin = nn.parameter.UninitializedTensorMixin
    memo: dict[int, Any] = {}
    for sub in module.modules():
        for p in sub._parameters.values():
            if p is None or id(p) in memo:
                continue
            if isinstance(p, mixin):
                memo[id(p)] = nn.UninitializedParameter(p.requires_grad, device="meta")
            else:
                memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), p.requires_grad)
        for b in sub._buffers.values():
            if b is None or id(b) in memo:
                continue
            memo[id(b)] = (nn.UninitializedBuffer(device="meta") if isinstance(b, mixin)
                           else torch.empty_like(b, device="meta"))
    return copy.deepcopy(module, memo)


def call_on_meta(module, *args: Any, training: bool = False, **kwargs: Any) -> Any:
    """``module(*args)`` with meta weights; ``args`` should already be meta tensors.

    Lazy modules that never ran have no weights to stand in for: a throw-away copy is moved to
    meta and materialises there, so the user's module stays lazy and untouched. Eval mode
    unless ``training`` (see :func:`run_mode`).
    """
    torch = torch_module()
    from torch.func import functional_call

    with torch.no_grad():
        if has_uninitialized(module):
            clone = meta_clone(module)
            with run_mode(clone, training):
                return clone(*args, **kwargs)
        with run_mode(module, training):
            if _all_meta(module):  # built on the meta device: nothing to stand in for
                return module(*args, **kwargs)
            return functional_call(module, meta_state(module), args, kwargs)


def call_on_device(module, device: Any, *args: Any) -> Any:
    """``module(*args)`` in eval mode without gradients on ``device``, leaving the caller's
    module as it was: weights held elsewhere run as copies on ``device`` (never ``module.to``,
    which would move the user's model), and every training flag is restored."""
    torch = torch_module()
    if torch.device(device).type == "meta":
        return call_on_meta(module, *args)
    from torch.func import functional_call

    with torch.no_grad(), run_mode(module, False):
        if _all_on(module, torch.device(device)):
            return module(*args)
        return functional_call(module, state_on(module, device), args)


def _all_meta(module) -> bool:
    """Whether every parameter and buffer of ``module`` is already a meta tensor."""
    return _all_on(module, torch_module().device("meta"))


def _all_on(module, device) -> bool:
    """Whether every parameter and buffer of ``module`` is on ``device`` (``cuda`` matches the
    current ``cuda:N``, as torch places a tensor moved there)."""
    from itertools import chain

    def same(at) -> bool:
        return at.type == device.type and (device.index is None or at.index == device.index)

    return all(same(t.device) for t in chain(module.parameters(), module.buffers()))


def torch_dtype(dtype: Any):
    """A torch dtype from an element type's name (``"int64"``; see :mod:`shapecalc.core.inputs`)
    or a torch dtype; ``None`` stays ``None`` (float32, torch's default)."""
    if isinstance(dtype, str):
        return getattr(torch_module(), torch_dtype_name(dtype))
    return dtype


def meta_input(shape: Shape, dtype: Any = None, device: Any = "meta"):
    """Zeros of ``shape`` on ``device`` (meta: no memory); ``dtype`` as :func:`torch_dtype` takes it."""
    return torch_module().zeros(tuple(shape), device=device, dtype=torch_dtype(dtype))


def torch_error(err: Exception) -> str:
    """Torch's own message, first line only: that is the sentence a user would have seen."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def user_line(frames: list[tuple[str, int]]) -> str | None:
    """``net.py:26``: the innermost (file, line) of ``frames`` in the user's own code.

    A torch error surfaces deep inside torch (its meta kernels, ``_refs``), and fx records its
    own frames; the line the user can change is the one that called them, so frames in torch
    and in this package are skipped. ``None`` when no other frame is left. A path under the
    working directory is shown relative to it.
    """
    import os

    torch_dir = os.path.dirname(torch_module().__file__)
    own_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found = None
    for filename, line in frames:
        path = os.path.abspath(filename)
        if not path.startswith((torch_dir + os.sep, own_dir + os.sep)) and not filename.startswith("<"):
            found = (path, line)
    if found is None:
        return None
    path, line = found
    try:
        shown = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        shown = path
    return f"{path if shown.startswith('..') else shown}:{line}"


def raised_at(err: BaseException) -> str | None:
    """Where in the user's code ``err`` was raised (:func:`user_line` of its traceback)."""
    import traceback

    return user_line([(f.filename, f.lineno) for f in traceback.extract_tb(err.__traceback__)])


def forward_error(err: BaseException) -> str:
    """One line for an exception the forward raised: ``ValueError: too wide (raised at
    net.py:26)``: the type, torch's (or the user's) first line, and where."""
    where = raised_at(err)
    return f"{type(err).__name__}: {torch_error(err)}" + (f" (raised at {where})" if where else "")


#: Measured ops that read each position alone, whatever their arguments (eval-mode stochastic
#: depth is the identity; in training it scales whole samples).
_POSITIONWISE_OPS = frozenset({"stochastic_depth", "drop_path", "contiguous", "clone", "to", "float",
                               "type_as", "neg", "abs", "exp", "log", "sqrt", "rsqrt", "pow",
                               "reciprocal", "clamp", "square"})
#: Reshapes: their output is the input's elements in the same (row-major) order.
_RESHAPE_OPS = frozenset({"view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze"})
_PERMUTE_OPS = frozenset({"permute", "transpose", "swapaxes", "movedim", "moveaxis"})


@dataclass(frozen=True)
class MeasuredLayer(Layer):
    """A node whose output shape comes from running torch on the meta device.

    Used for modules and ops the engine has no formula for. ``runner(*input_shapes)`` returns
    ``(output_shape, macs)`` (``macs`` ``None``: unknown); answers are cached per input shapes, so an input-range scan costs
    one meta run per distinct size. The table marks these rows "measured", not "derived".
    """

    label: str
    op_type: str = "Measured"
    params: int = 0
    note: str = "shape measured on the meta device"
    runner: Callable[..., tuple[Shape, int]] | None = field(default=None, compare=False, repr=False)
    cache: dict = field(default_factory=dict, compare=False, repr=False)
    #: ``forward(*meta_tensors)``: the op itself, run with autograd recording to see what it
    #: saves (:func:`shapecalc.torch_bridge.saved.measure_layer`); ``input_dtypes()`` the
    #: torch dtype of each input (``None``: the activations'). ``None``: not measurable so.
    forward: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    input_dtypes: Callable[[], list[Any]] | None = field(default=None, compare=False, repr=False)

    kind: ClassVar[LayerKind] = LayerKind.OTHER
    arity: ClassVar[int] = 0
    measured: ClassVar[bool] = True

    def field_steps(self, *inputs: Shape) -> Any:
        """What a measured op's name and shapes alone prove: an activation, a dropout, an
        element-wise arithmetic op or a stochastic depth (``relu``, ``mul`` by a layer scale)
        treats each position alone whatever its arguments; a reshape (``view``, ``flatten``)
        is row-major by definition, so its sizes say where each field goes; a ``permute`` of
        axes of distinct sizes is read from the sizes. Any other measured op has no rule here."""
        from shapecalc.core.arithmetic import FieldRule
        from shapecalc.core.arithmetic.field_axes import Permuted, Reshaped

        kind = _field_kind(self.op_type)
        if kind == "pointwise":
            return FieldRule.POINTWISE
        if not inputs or kind == "unknown":
            return FieldRule.UNKNOWN
        # A reshape's other inputs only lend sizes (x.reshape(B, N, -1) with B, N from a tensor's
        # shape): the values, and the fields, are the first input's.
        before, after = tuple(inputs[0]), tuple(self.output_shape(*inputs))
        if kind == "reshape":
            return Reshaped(before, after)
        if len(set(before)) == len(before) and sorted(before) == sorted(after):
            return Permuted(before, tuple(before.index(n) for n in after))
        return FieldRule.UNKNOWN

    def _run(self, inputs: tuple[Shape, ...]) -> tuple[Shape, int]:
        key = tuple(tuple(s) for s in inputs)
        if key not in self.cache:
            if self.runner is None:
                raise ShapeError("no way to measure this node", layer=self.label)
            self.cache[key] = self.runner(*key)
        return self.cache[key]

    def output_shape(self, *inputs: Shape) -> Shape:
        return self._run(inputs)[0]

    def param_count(self, *inputs: Shape) -> int:
        return self.params

    def output_is_view(self, training: bool) -> bool:
        """Known once :func:`~shapecalc.torch_bridge.saved.measure_layer` ran the op (``chunk``,
        ``getitem`` give views): until then, a storage of its own."""
        return bool(self.cache.get("view"))

    def mac_count(self, output: Shape, *inputs: Shape) -> int | None:
        return self._run(inputs)[1]

    def notes(self, output: Shape, *inputs: Shape) -> list[Note]:
        # The note is a sentence chosen by the importer (why this node is measured).
        return [text_note(self.note)] if self.note else []

    @property
    def type_name(self) -> str:
        return self.op_type

    def describe(self) -> str:
        return self.label

    def arguments(self) -> dict[str, Any]:
        return {}


def measured_runner(fn: Callable[..., Any], label: str,
                    dtypes: Callable[[], list[Any]] | None = None,
                    seen: Callable[[Any], None] | None = None,
                    macs_free: Callable[[], bool] | None = None) -> Callable[..., tuple[Shape, int]]:
    """Wrap ``fn(*meta_tensors)`` as a runner: shape of the result, MACs from torch's FLOP counter
    (``None`` where torch ran work it has no formula for, see :mod:`mac_count`).

    ``dtypes()`` gives each input's torch dtype (``None``: float32), read when the runner runs
    so that an analysis with int64 token ids measures with int64 tensors; ``seen(dtype)`` is
    told the result's element type, so that the nodes reading it can measure with it too;
    ``macs_free()`` says, when it runs, whether ``fn`` runs only ops that multiply nothing
    (:data:`~shapecalc.torch_bridge.mac_count.MAC_FREE_OPS`): then no counter is needed."""

    def run(*shapes: Shape) -> tuple[Shape, int | None]:
        torch = torch_module()
        from shapecalc.torch_bridge.mac_count import counted, mac_free

        kinds = dtypes() if dtypes is not None else []
        kinds = list(kinds) + [None] * (len(shapes) - len(kinds))
        tensors = [meta_input(s, k) for s, k in zip(shapes, kinds)]
        try:
            out, macs = (mac_free if macs_free is not None and macs_free() else counted)(fn, *tensors)
        except Exception as err:  # torch refused the shapes: that is the user's shape bug
            raise ShapeError(f"torch refused the input {' and '.join(_fmt(s) for s in shapes)}: "
                             f"{torch_error(err)}", layer=label,
                             numbers={"input_shapes": shapes}) from None
        if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
            out = out[0]
        if not isinstance(out, torch.Tensor):
            raise ShapeError(f"returns a {type(out).__name__}, not a tensor", layer=label)
        if seen is not None:
            seen(out.dtype)
        return tuple(out.shape), macs

    return run


def _fmt(shape: Shape) -> str:
    return "×".join(map(str, shape))


def record_module_shapes(module, input_shape: Shape, run: Callable[..., Any] | None = None
                         ) -> dict[str, Shape]:
    """Output shape of every submodule call in one meta forward (repeat calls as ``name#2``, …)."""
    torch = torch_module()
    shapes: dict[str, Shape] = {}
    calls: dict[str, int] = {}
    handles = []
    for name, sub in module.named_modules():
        if not name:
            continue

        def hook(_m, _inp, out, name=name):
            if isinstance(out, torch.Tensor):
                calls[name] = calls.get(name, 0) + 1
                key = name if calls[name] == 1 else f"{name}#{calls[name]}"
                shapes[key] = tuple(out.shape)

        handles.append(sub.register_forward_hook(hook))
    try:
        if run is None:
            out = call_on_meta(module, meta_input(input_shape))
        else:  # a runner that may retry: only its last attempt's calls count
            def reset() -> None:
                shapes.clear()
                calls.clear()

            out = run(module, input_shape, reset)
    finally:
        for h in handles:
            h.remove()
    while isinstance(out, (tuple, list, dict)) and out:  # the first tensor of tuples and dicts
        out = next(iter(out.values())) if isinstance(out, dict) else out[0]
    if isinstance(out, torch.Tensor):
        shapes[""] = tuple(out.shape)
    return shapes


@lru_cache(maxsize=1024)
def _field_kind(op_type: str) -> str:
    """Which of :meth:`MeasuredLayer.field_steps`' cases a measured op's name falls in
    (``pointwise``, ``reshape``, ``permute`` or ``unknown``): the name alone decides, and a
    transformer's hook recording asks it for every view and add it ran."""
    from shapecalc.torch_bridge.fx_ops import BINARY, elementwise_op

    if elementwise_op(op_type) or op_type in BINARY or op_type in _POSITIONWISE_OPS:
        return "pointwise"
    if op_type in _RESHAPE_OPS:
        return "reshape"
    return "permute" if op_type in _PERMUTE_OPS else "unknown"
