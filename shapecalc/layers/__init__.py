"""Layer specs, one frozen dataclass per PyTorch layer kind, named and parameterised like torch.

``LAYER_TYPES`` maps a type name (``"Conv2d"``) to its class: spec files, the torch bridge and
the CLI look layers up there. Adding a layer is adding a public :class:`Layer` subclass in a
module of this package: every module is scanned, so there is no list to keep in sync.

The modules load on the first access to a name not defined here (``LAYER_TYPES``, ``Conv2d``,
``merge_rf`` …, PEP 562): building ~100 frozen dataclasses is most of the package's import
time, and ``shapecalc layer`` needs only ``layers.conv`` or ``layers.pool``
(``tests/test_cli_layer.py`` checks that it imports nothing else).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any

from .base import RF, Layer, Shape, format_shape

#: Merge nodes exist in the graph but not as torch modules: the blocks that hold them do.
MERGE_TYPES = frozenset({"Add", "Mul", "Concat"})


def _registry() -> dict[str, type[Layer]]:
    """Every layer class by name, once every module of the package has been imported."""
    namespace = globals()
    if "LAYER_TYPES" not in namespace:
        registry: dict[str, type[Layer]] = {}
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            module = importlib.import_module(f"{__name__}.{info.name}")
            for name, obj in vars(module).items():
                if (isinstance(obj, type) and issubclass(obj, Layer) and obj is not Layer
                        and obj.__module__ == module.__name__ and not name.startswith("_")):
                    registry[name] = obj
        from .merge import broadcast_shapes, merge_rf

        namespace.update(registry)  # ``from shapecalc.layers import Conv2d`` for every layer
        namespace.update(broadcast_shapes=broadcast_shapes, merge_rf=merge_rf,
                         __all__=_public(registry))
        namespace["LAYER_TYPES"] = registry  # last: its presence means "all loaded"
    return namespace["LAYER_TYPES"]


def __getattr__(name: str) -> Any:
    if name in {m.name for m in pkgutil.iter_modules(__path__)}:  # `from . import conv`: just it
        return importlib.import_module(f"{__name__}.{name}")
    _registry()
    try:
        return globals()[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def LazyConv2d(out_channels: int, kernel_size, **kwargs) -> Conv2d:
    """``nn.LazyConv2d``'s signature: ``in_channels`` is inferred from the input."""
    from .conv import Conv2d

    return Conv2d(None, out_channels, kernel_size, **kwargs)


def LazyLinear(out_features: int, **kwargs) -> Linear:
    """``nn.LazyLinear``'s signature: ``in_features`` is derived from the input."""
    from .basic import Linear

    return Linear(None, out_features, **kwargs)


def layer_from_dict(entry: dict) -> Layer:
    """Build a layer from ``{"type": "Conv2d", ...torch keyword arguments}`` (spec files)."""
    from ..errors import SpecError

    if "type" not in entry:
        raise SpecError("a layer entry needs a 'type' key")
    name = entry["type"]
    registry = _registry()
    cls = registry.get(name)
    if cls is None:
        import difflib

        hint = difflib.get_close_matches(str(name), registry, n=1)
        raise SpecError(
            f"unknown layer type {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        )
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in entry.items() if k != "type"}
    allowed = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise SpecError(
            f"{name} does not take {', '.join(unknown)}; it takes {', '.join(sorted(allowed))}"
        )
    for field_name in cls.inferred:
        kwargs.setdefault(field_name, None)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise SpecError(f"{name}: {err}") from None


def layer_to_dict(layer: Layer) -> dict:
    """The inverse of :func:`layer_from_dict`: only arguments that differ from torch's defaults."""
    out: dict = {"type": layer.type_name}
    for key, value in layer.arguments().items():
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def _public(registry: dict[str, type[Layer]]) -> list[str]:
    return [*registry, "LAYER_TYPES", "MERGE_TYPES", "Layer", "LazyConv2d", "LazyLinear", "RF",
            "Shape", "broadcast_shapes", "format_shape", "layer_from_dict", "layer_to_dict",
            "merge_rf"]
