"""Layer specs, one frozen dataclass per PyTorch layer kind, named and parameterised like torch.

``LAYER_TYPES`` maps a type name (``"Conv2d"``) to its class: spec files, the torch bridge and
the CLI look layers up there. Adding a layer is adding a public :class:`Layer` subclass in a
module of this package: every module is scanned, so there is no list to keep in sync.

The modules load on the first access to a name not defined here (``LAYER_TYPES``, ``Conv2d``,
``broadcast_shapes`` …, PEP 562): building ~100 frozen dataclasses is most of the package's import
time, and ``shapecalc layer`` needs only ``layers.conv`` or ``layers.pool``
(``tests/test_cli_layer.py`` checks that it imports nothing else).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any

from shapecalc.core.layers.base import LAYER_TYPES as _DEFINED
from shapecalc.core.layers.base import RF, Layer, LayerKind, Shape, format_shape, merge_fields, next_field

#: Merge nodes exist in the graph but not as torch modules: the blocks that hold them do.
MERGE_TYPES = frozenset({"Add", "Mul", "Concat"})


def _registry() -> dict[str, type[Layer]]:
    """Every layer class by name, once every module of the package has been imported."""
    namespace = globals()
    if "LAYER_TYPES" not in namespace:
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            importlib.import_module(f"{__name__}.{info.name}")
        # Every public Layer subclass defined in these modules registered itself as it was
        # defined (Layer.__init_subclass__); the same dict, so a class defined later joins it.
        registry = _DEFINED
        from shapecalc.core.layers.merge import broadcast_shapes

        namespace.update(registry)  # ``from shapecalc.core.layers import Conv2d`` for every layer
        namespace.update(broadcast_shapes=broadcast_shapes,
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
    from shapecalc.core.layers.conv import Conv2d

    return Conv2d(None, out_channels, kernel_size, **kwargs)


def LazyLinear(out_features: int, **kwargs) -> Linear:
    """``nn.LazyLinear``'s signature: ``in_features`` is derived from the input."""
    from shapecalc.core.layers.basic import Linear

    return Linear(None, out_features, **kwargs)


def layer_from_dict(entry: Any, *, container_keys: tuple[str, ...] = ()) -> Layer:
    """Build a layer from ``{"type": "Conv2d", ...torch keyword arguments}``.

    The one dict → layer builder (spec files use it too). Lists become tuples and every value
    is checked by the layer class itself. ``container_keys`` are keys that belong to whoever
    holds the entry (a spec file's ``name`` and ``repeat``). Errors are ``SpecError``
    whose ``key_path`` is the key at fault relative to the entry (``kernel_size[1]``, ``type``;
    ``""`` for the entry as a whole) and whose ``detail`` says what is wrong.
    """
    from shapecalc.core.errors import FieldError, ShapecalcError, SpecError

    def fail(key: str, detail: str) -> SpecError:
        return SpecError(f"{key}: {detail}" if key else detail, key_path=key, detail=detail)

    if not isinstance(entry, dict):
        raise fail("", f"expected a mapping like {{\"type\": \"Conv2d\", ...}}, got a {type(entry).__name__}")
    if "type" not in entry:
        raise fail("", "a layer entry needs a 'type' key (a torch layer name like \"Conv2d\")")
    name = entry["type"]
    registry = _registry()
    cls = registry.get(name) if isinstance(name, str) else None
    if cls is None:
        import difflib

        from shapecalc.core.layers.fields import short_repr

        hint = difflib.get_close_matches(str(name)[:100], registry, n=1)
        raise fail("type", f"unknown layer type {short_repr(name)}"
                   + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {k: v for k, v in entry.items() if k != "type" and k not in container_keys}
    for key in kwargs:
        if key not in fields:
            raise fail(str(key), f"{name} does not take {key!r}; it takes {', '.join(fields) or 'no arguments'}")
    for field_name in cls.inferred:
        kwargs.setdefault(field_name, None)
    missing = [f for f, spec in fields.items() if f not in kwargs
               and spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING]
    if missing:
        raise fail("", f"{name} needs {', '.join(missing)}")
    try:
        return cls(**kwargs)
    except FieldError as err:
        raise fail(err.field, err.detail) from None
    except ShapecalcError as err:
        raise fail("", f"{name}: {getattr(err, 'message', str(err))}") from None
    except (TypeError, ValueError, ArithmeticError, RecursionError) as err:
        # A value the class's own checks did not foresee: still one line naming the layer.
        raise fail("", f"{name}: {type(err).__name__}: {str(err)[:200]}") from None


def layer_to_dict(layer: Layer) -> dict:
    """The inverse of :func:`layer_from_dict`: only arguments that differ from torch's defaults."""
    out: dict = {"type": layer.type_name}
    for key, value in layer.arguments().items():
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def _public(registry: dict[str, type[Layer]]) -> list[str]:
    return [*registry, "LAYER_TYPES", "MERGE_TYPES", "Layer", "LayerKind", "LazyConv2d", "LazyLinear", "RF",
            "Shape", "broadcast_shapes", "format_shape", "layer_from_dict", "layer_to_dict",
            "merge_fields", "next_field"]
