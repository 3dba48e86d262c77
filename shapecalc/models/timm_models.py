"""``timm:NAME[(kwargs)]``: a model from timm's registry, built as ``timm.create_model`` builds it
(``pretrained=False``: no weights are ever downloaded), at the input size its ``pretrained_cfg``
gives.

A name in the registry wins (``timm:resnet50``, ``timm:vit_base_patch16_224.augreg_in21k``);
anything else after ``timm:`` is an ordinary Python target (``timm:create_model('resnet50')``)
and is left to :func:`~shapecalc.models.sources.from_target`. Keyword arguments are literals,
read with ``ast.literal_eval`` (:func:`~shapecalc.models.sources.parse_target`), never run.
"""

from __future__ import annotations

import difflib
from typing import Any

from shapecalc.core.errors import SpecError, user_code
from shapecalc.models.build_options import BUILD_OPTIONS, META_THRESHOLD
from shapecalc.models.model_source import TIMM_PREFIX, ModelSource, module_source
from shapecalc.models.target_syntax import parse_target

PREFIX = TIMM_PREFIX
#: create_model arguments that would fetch or read weights: a MODEL names an architecture only.
WEIGHT_ARGUMENTS = ("pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path",
                    "cache_dir")


def _timm() -> Any:
    from shapecalc.core.extras import require

    try:
        return require("timm", f"a {PREFIX} model", "models")
    except SpecError:
        raise
    except Exception as err:  # installed, but one of its own imports fails (torchvision's ops)
        raise SpecError(f"importing timm failed: {type(err).__name__}: "
                        f"{(str(err).splitlines() or [''])[0][:200]}") from None


def registry_name(target: str) -> tuple[str, dict[str, Any]] | None:
    """``"resnet50(num_classes=10)"`` → ``("resnet50", {"num_classes": 10})`` when the name is
    in timm's registry; ``None`` when it names something else in the timm package (a Python
    target); :class:`SpecError` with the nearest names when it names nothing."""
    path, args, kwargs, _called = parse_target(target)
    timm = _timm()
    name = ".".join(path)  # an architecture with its pretrained tag: vit_base_patch16_224.augreg_in21k
    if not timm.is_model(name):
        if len(path) > 0 and hasattr(timm, path[0]):
            return None
        hint = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        shown = " or ".join(repr(h) for h in hint)
        raise SpecError(f"{PREFIX}{name}: not a timm architecture"
                        + (f"; did you mean {shown}?" if hint else "; timm.list_models() lists them"))
    if args:
        raise SpecError(f"{PREFIX}{name}: give create_model's arguments by name, like "
                        f"{PREFIX}{name}(num_classes=10)")
    refused = [k for k in kwargs if k in WEIGHT_ARGUMENTS]
    if refused:
        raise SpecError(f"{PREFIX}{name}: {refused[0]}= would load weights; a timm: MODEL is built "
                        "from its architecture only (pretrained=False)")
    return name, kwargs


def default_input(module: Any, kwargs: dict[str, Any]) -> tuple[int, ...] | None:
    """``(1, C, H, W)`` from the model's ``pretrained_cfg``, with ``img_size=``/``in_chans=``
    given to create_model winning (the model was built for those, not for the tag's size)."""
    cfg = getattr(module, "pretrained_cfg", None) or {}
    size = cfg.get("input_size") if isinstance(cfg, dict) else None
    if not (isinstance(size, (tuple, list)) and all(isinstance(v, int) and v > 0 for v in size)):
        return None
    channels, *spatial = size
    img = kwargs.get("img_size")
    if isinstance(img, int) and not isinstance(img, bool):
        spatial = [img] * len(spatial)
    elif isinstance(img, (tuple, list)) and len(img) == len(spatial) and all(isinstance(v, int) for v in img):
        spatial = list(img)
    chans = kwargs.get("in_chans")
    if isinstance(chans, int) and not isinstance(chans, bool) and chans > 0:
        channels = chans
    return (1, channels, *spatial)


def timm_source(text: str) -> ModelSource | None:
    """The ModelSource ``timm:NAME[(kwargs)]`` names, or ``None`` for a Python target in timm."""
    found = registry_name(text[len(PREFIX):])
    if found is None:
        return None
    name, kwargs = found
    timm = _timm()
    from shapecalc.torch_bridge.meta_build import build_sized

    def create() -> Any:
        return timm.create_model(name, pretrained=False, **kwargs)

    options = BUILD_OPTIONS.get()
    try:
        with user_code(f"timm.create_model({name!r})"):
            module, meta = build_sized(create, options.meta, META_THRESHOLD)
    except SpecError as err:
        raise SpecError(f"{text}: {err}") from None
    except Exception as err:  # a keyword the architecture does not take, a size it refuses
        first = (str(err).strip().splitlines() or [""])[0][:300]
        raise SpecError(f"{text}: timm.create_model failed: {type(err).__name__}: {first}") from None
    label = name.split(".")[0]
    with user_code(f"tracing {label}"):
        src = module_source(module, name=label, source=text)
    src.default_input = default_input(module, kwargs)
    src.description = f"timm {name}" + (" (built on the meta device: no weights)" if meta else "")
    return src


__all__ = ["PREFIX", "WEIGHT_ARGUMENTS", "default_input", "registry_name", "timm_source"]
