"""The one place (with ``train/``) that imports torch, and only when called.

``spec_module`` turns a spec tree into the identical ``nn.Module`` (module paths equal the
spec's node names); ``trace_shapes`` runs a real forward with hooks. What loads a model by name
and compares the two (``build_module``, ``verify``) sits above, in ``models.torch_models``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from shapecalc.core.blocks import Block, Branches, Residual, Sequential
from shapecalc.core.errors import ShapecalcError, SpecError
from shapecalc.core.layers import Layer, Shape
from shapecalc.core.layers.base import TF_SAME
from shapecalc.torch_bridge.measure import call_on_device, record_module_shapes, torch_error


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised only without the extra installed
        from shapecalc.core.extras import missing

        raise missing("building a torch module") from None
    return torch


def _module_classes():
    """Block modules are defined on first use so that importing this file stays torch-free."""
    global _RESIDUAL, _BRANCHES
    if "_RESIDUAL" in globals():
        return _RESIDUAL, _BRANCHES
    torch = _torch()
    nn = torch.nn

    class ResidualBlock(nn.Module):
        """``post(body(x) + shortcut(x))``; children are named as in the spec."""

        def __init__(self, body: nn.Module, shortcut: nn.Module | None, post: nn.Module | None):
            super().__init__()
            self.body = body
            if shortcut is not None:
                self.shortcut = shortcut
            if post is not None:
                self.post = post

        def forward(self, x):
            side = self.shortcut(x) if hasattr(self, "shortcut") else x
            y = self.body(x) + side
            return self.post(y) if hasattr(self, "post") else y

    class ConcatBranches(nn.Module):
        """``torch.cat([branch(x) for branch in branches], dim)``."""

        def __init__(self, branches: "OrderedDict[str, nn.Module]", dim: int):
            super().__init__()
            for name, module in branches.items():
                self.add_module(name, module)
            self.dim = dim

        def forward(self, x):
            return torch.cat([m(x) for m in self.children()], dim=self.dim)

    _RESIDUAL, _BRANCHES = ResidualBlock, ConcatBranches
    return _RESIDUAL, _BRANCHES


def layer_to_module(layer: Layer):
    """``nn.<Type>(**kwargs)`` of a resolved layer: names and defaults are torch's own."""
    nn = _torch().nn
    cls = getattr(nn, layer.type_name, None)
    if cls is None:
        raise SpecError(f"{layer.type_name} has no torch.nn module to build")
    if type(layer).extra_outputs is not Layer.extra_outputs:  # LSTM, attention: tuple results
        from shapecalc.torch_bridge.single_output import single_output_class

        cls = single_output_class(cls)
    kwargs = layer.torch_kwargs()
    if kwargs.get("padding") == TF_SAME:  # torch has no such padding: pad first, as timm does
        module = _tf_same_class(cls)(**{**kwargs, "padding": 0})
        module.tf_same_windows = layer.windows  # type: ignore[attr-defined]
        return module
    return cls(**kwargs)


_TF_SAME_TWINS: dict[type, type] = {}


def _tf_same_class(torch_cls: type) -> type:
    """``torch_cls`` run on its input padded as TensorFlow's ``'SAME'`` pads it (``F.pad``,
    ``-inf`` for max pooling, as timm's ``MaxPool2dSame``), the layer itself unpadded."""
    twin = _TF_SAME_TWINS.get(torch_cls)
    if twin is None:
        functional = _torch().nn.functional
        fill = float("-inf") if torch_cls.__name__.startswith("MaxPool") else 0.0

        def forward(self, x):
            sizes = x.shape[x.dim() - len(self.tf_same_windows):]
            pads: list[int] = []
            for w, n in zip(reversed(self.tf_same_windows), reversed(sizes)):  # F.pad: last axis first
                at = w.at(int(n))
                pads += [at.p_left, at.p_right]
            return torch_cls.forward(self, functional.pad(x, pads, value=fill))

        twin = _TF_SAME_TWINS[torch_cls] = type(f"{torch_cls.__name__}TfSame", (torch_cls,), {
            "forward": forward, "__module__": __name__,
            "__doc__": f"``nn.{torch_cls.__name__}`` with TensorFlow 'SAME' padding (built from a spec)."})
    return twin


def spec_module(block: Block, resolved: dict[str, Layer], path: str = "", device: str | None = None):
    """The ``nn.Module`` of spec tree ``block``, each layer as ``resolved`` (node name → layer
    with inferred sizes filled in) has it; module paths equal the spec's node names.

    ``device="meta"`` builds it without memory for weights (what ``--verify`` needs: vgg16's
    553 MB of weights are never allocated), whatever sizes a spec file declares."""
    if device is not None:
        with _torch().device(device):
            return spec_module(block, resolved, path)
    nn = _torch().nn
    residual_cls, branches_cls = _module_classes()

    def child(name: str, node):
        sub = f"{path}.{name}" if path else name
        if isinstance(node, Block):
            return spec_module(node, resolved, sub)
        return layer_to_module(resolved.get(sub, node))

    if isinstance(block, Sequential):
        _refuse_clashes(nn.Sequential(), block, path)
        return nn.Sequential(OrderedDict((n, child(n, c)) for n, c in block.children()))
    if isinstance(block, Residual):
        parts = dict(block.children())
        return residual_cls(
            child("body", parts["body"]),
            child("shortcut", parts["shortcut"]) if "shortcut" in parts else None,
            child("post", parts["post"]) if "post" in parts else None,
        )
    if isinstance(block, Branches):
        _refuse_clashes(branches_cls(OrderedDict(), block.dim), block, path)
        return branches_cls(OrderedDict((n, child(n, c)) for n, c in block.children()), block.dim)
    raise SpecError(f"no torch module for block {type(block).__name__}")


def _refuse_clashes(empty_module, block: Block, path: str) -> None:
    """Spec child names become torch attribute names: one that is already an attribute of the
    module (``training``, ``forward``, ``to``, ``_modules``) cannot be a child; say so in one line
    (renaming it would break the match between torch's module paths and the spec's node names)."""
    for name, _ in block.children():
        if hasattr(empty_module, name):
            where = f"{path}.{name}" if path else name
            raise SpecError(f"layer name {name!r} (node {where!r}) is an attribute of torch's "
                            f"{type(empty_module).__name__}, so torch cannot build it; rename it in the spec")


def trace_shapes(module, input_shape: Shape, device: str = "cpu") -> dict[str, Shape]:
    """Output shape of every named submodule in a real forward on ``device`` (``"meta"`` costs
    no memory), in eval mode and without gradients; ``module`` itself is left as it was (its
    device, weights and every training flag)."""
    torch = _torch()

    def forward(mod, shape, _reset):
        return call_on_device(mod, device, torch.zeros(tuple(shape), device=device))

    return record_module_shapes(module, input_shape, forward)


def verify_shapes(module, input_shape: Shape, device: str = "meta") -> dict[str, Shape]:
    """:func:`trace_shapes` for ``--verify``: torch refusing what the engine accepted (a float
    index into an Embedding) is one line, not a traceback."""
    try:
        return trace_shapes(module, input_shape, device)
    except (ShapecalcError, KeyboardInterrupt):
        raise
    except Exception as err:
        shown = "×".join(map(str, input_shape))
        raise ShapecalcError(f"verify: torch's forward refused input {shown}: "
                             f"{type(err).__name__}: {torch_error(err)[:300]}") from None


@dataclass(frozen=True)
class NodeCheck:
    name: str
    engine: Shape
    torch: Shape | None

    @property
    def ok(self) -> bool:
        return self.torch is None or tuple(self.engine) == tuple(self.torch)
