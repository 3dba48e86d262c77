"""``hf:…`` as a MODEL: a transformers model built from its configuration alone.

The configuration comes from :mod:`.hf_config` (read as data, checked, never code). The model
class is transformers' own: the task head asked for (``hf:llama:causal-lm``), else the class the
configuration's ``architectures`` entry names (looked up among transformers' classes for that
model type, never imported from elsewhere), else the bare model (``AutoModel``). It is built on
the meta device above :data:`~shapecalc.models.build_options.META_THRESHOLD` parameters or with
``--meta``, so a 405-billion-parameter configuration costs shapes, not memory.

Inputs are what the model's ``main_input_name`` says: token ids ``1×seq_len`` (int64), with the
decoder's own token ids for an encoder-decoder, or pixels ``1×C×H×W`` at the configured image
size. The forward is called with those by name and an attention mask that hides nothing, as a
Hugging Face user calls it; no wrapper file is needed.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from shapecalc.core.errors import SpecError, user_code
from shapecalc.core.notes import Note, NoteKind
from shapecalc.models.build_options import BUILD_OPTIONS, META_THRESHOLD
from shapecalc.models.hf_config import HfForm, HfReference, config_document, parse_reference
from shapecalc.models.model_source import ModelSource, module_source

#: Pipeline names a Hugging Face user may give for a head, and the head they mean.
TASK_ALIASES = {
    "text-generation": "causal-lm", "fill-mask": "masked-lm", "text2text-generation": "seq2seq-lm",
    "text-classification": "sequence-classification", "summarization": "seq2seq-lm",
    "translation": "seq2seq-lm", "base": "model", "feature-extraction": "model",
}


def task_classes() -> dict[str, Any]:
    """Task name → transformers' Auto class: ``model`` (AutoModel) and one per ``AutoModelFor…``
    (``causal-lm``, ``masked-lm``, ``seq2seq-lm``, ``sequence-classification``, …)."""
    # The Auto classes' own module: ``dir(transformers)`` lists every lazy name of the
    # package (0.5-0.8 s), where this is a plain module's dictionary.
    from transformers.models.auto import modeling_auto

    found = {"model": modeling_auto.AutoModel}
    for name in dir(modeling_auto):
        if name.startswith("AutoModelFor"):
            task = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name[len("AutoModelFor"):]).lower()
            found[task.replace("2-", "2")] = getattr(modeling_auto, name)
    return found


def heads_of(config: Any, tasks: dict[str, Any]) -> list[str]:
    """The task heads transformers has for this configuration's model type."""
    return [task for task, auto in tasks.items() if type(config) in auto._model_mapping]


def model_class(config: Any, ref: HfReference, doc: dict[str, Any] | None) -> Any:
    """The transformers class to build: the task's, the ``architectures`` entry's, or the bare one."""
    tasks = task_classes()
    if ref.task is not None:
        task = TASK_ALIASES.get(ref.task.lower(), ref.task.lower())
        auto = tasks.get(task)
        if auto is None or type(config) not in auto._model_mapping:
            heads = ", ".join(heads_of(config, tasks))
            raise SpecError(f"{ref.text}: {config.model_type} has no {ref.task!r} head; its heads: {heads}")
        return auto._model_mapping[type(config)]
    named = (doc or {}).get("architectures")
    if isinstance(named, list) and named and isinstance(named[0], str):
        for auto in tasks.values():  # only classes transformers registers for this model type
            if type(config) in auto._model_mapping:
                cls = auto._model_mapping[type(config)]
                for candidate in cls if isinstance(cls, (tuple, list)) else (cls,):
                    if candidate.__name__ == named[0]:
                        return candidate
    return tasks["model"]._model_mapping[type(config)]


def build_config(ref: HfReference, doc: dict[str, Any] | None) -> Any:
    """The transformers configuration object: the model type's defaults, updated from ``doc``."""
    from transformers import AutoConfig

    model_type = ref.location if doc is None else doc["model_type"]
    entries = {k: v for k, v in (doc or {}).items() if k not in ("model_type", "architectures")}
    try:
        config = AutoConfig.for_model(model_type, **entries)
    except ValueError as err:
        if "Unrecognized model" in str(err) or "model_type" in str(err):
            raise SpecError(f"{ref.text}: model_type {model_type!r} is not one transformers "
                            "knows (a newer transformers may)") from None
        raise SpecError(f"{ref.text}: {str(err).splitlines()[0][:200]}") from None
    except Exception as err:  # an entry the configuration class refuses
        raise SpecError(f"{ref.text}: the configuration is refused: {type(err).__name__}: "
                        f"{(str(err).splitlines() or [''])[0][:200]}") from None
    if hasattr(config, "use_cache"):
        config.use_cache = False  # one forward, no cache returned beside the outputs
    return config


def default_inputs(config: Any, cls: Any, seq_len: int, ref: HfReference) -> tuple[list[tuple], tuple[str, ...], tuple[str, ...]]:
    """(shapes, element types, argument names) of the forward's default inputs."""
    main = getattr(cls, "main_input_name", "input_ids")
    if main == "pixel_values":
        size = getattr(config, "image_size", None)
        channels = getattr(config, "num_channels", 3)
        sizes = (size, size) if isinstance(size, int) else tuple(size or ())
        if len(sizes) != 2 or not all(isinstance(v, int) and v > 0 for v in sizes + (channels,)):
            raise SpecError(f"{ref.text}: the configuration gives no image size; give --input 1x3xHxW")
        return [(1, channels, *sizes)], ("float32",), ("pixel_values",)
    if main != "input_ids":
        raise SpecError(f"{ref.text}: {cls.__name__} takes {main}, which has no default shape; "
                        "give --input")
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if isinstance(limit, int) and 0 < limit < seq_len:
        raise SpecError(f"--seq-len {seq_len}: {config.model_type} takes at most {limit} positions")
    names = ["input_ids"]
    if getattr(config, "is_encoder_decoder", False):
        names.append("decoder_input_ids")
    return [(1, seq_len)] * len(names), ("int64",) * len(names), tuple(names)


def named_forward(model: Any, names: tuple[str, ...]) -> None:
    """Make ``model(*tensors)`` call its forward by name (``input_ids=``, ``decoder_input_ids=``)
    with an attention mask that lets every token attend, as a Hugging Face user calls it. The
    class is swapped for a subclass of the same name, so module paths and class names in the
    table are the model's.

    The mask is given in its expanded 4-D form: from a 2-D mask (or none) transformers' mask
    helpers first read its values (``mask.all()``, packed-sequence detection), which the meta
    device cannot answer; a 4-D mask is used as given. Shapes and costs are the same."""
    cls = type(model)
    takes = inspect.signature(cls.forward).parameters
    mask = "attention_mask" in takes and names[0] == "input_ids"

    def forward(self: Any, *tensors: Any) -> Any:
        import torch

        given = dict(zip(names, tensors))
        if mask:  # (batch, 1, 1, tokens): broadcasts over heads and queries
            ids = tensors[0]
            # Made out of sight of torch-function modes: the hook recorder would show it as
            # the model's first row, and it is this wrapper's, not the model's.
            with torch._C.DisableTorchFunction():
                given["attention_mask"] = torch.ones((ids.shape[0], 1, 1, ids.shape[-1]),
                                                     dtype=torch.bool, device=ids.device)
        return cls.forward(self, **given)

    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    forward.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [self_param] + [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])
    model.__class__ = type(cls.__name__, (cls,), {"forward": forward, "__module__": cls.__module__,
                                                  "__qualname__": cls.__qualname__})


def cls_has_experts(cls: Any) -> bool:
    """Whether transformers lets this class choose its experts kernel (a mixture of experts)."""
    can_set = getattr(cls, "_can_set_experts_implementation", None)  # transformers >= 5
    return can_set is not None and bool(can_set())


def experts_note(config: Any) -> Note:
    """How a mixture of experts is run and counted.

    On meta, transformers' default experts kernel (``grouped_mm``) fails (torch's meta
    grouped_mm takes bfloat16 only, and torch's FLOP counter has no formula for it), and
    ``eager`` loops over the experts the router picked, reading values the meta device does not
    have. ``batched_mm`` gathers each token's top-k
    experts' weights and multiplies them in one batch: the same products for any routing, so
    shapes and MACs do not depend on the values, and they equal eager's (k experts per token)."""
    top_k = getattr(config, "num_experts_per_tok", None) or getattr(config, "moe_topk", None)
    experts = next((getattr(config, name) for name in ("num_local_experts", "num_experts",
                                                        "n_routed_experts")
                    if isinstance(getattr(config, name, None), int)), None)
    return Note.of(NoteKind.EXPERTS, top_k=top_k if isinstance(top_k, int) else "k",
                   experts=experts if experts is not None else "its")


def hf_source(text: str) -> ModelSource:
    """The ModelSource an ``hf:…`` MODEL names (see :mod:`.hf_config` for the forms)."""
    ref = parse_reference(text)
    doc = config_document(ref)
    config = build_config(ref, doc)
    cls = model_class(config, ref, doc)
    options = BUILD_OPTIONS.get()
    shapes, kinds, names = default_inputs(config, cls, options.seq_len, ref)
    from shapecalc.torch_bridge.meta_build import build_sized

    # Eager attention writes its masks with tensor operations the meta device can run; the
    # fused kernels' mask helpers read tensor values first. Training keeps the default kernels.
    attention = {} if options.meta is False else {"attn_implementation": "eager"}
    experts = experts_note(config) if cls_has_experts(cls) else None
    if experts is not None:
        attention["experts_implementation"] = "batched_mm"

    def create() -> Any:
        return cls._from_config(config, **attention)

    try:
        with user_code(f"building {cls.__name__}"):
            model, meta = build_sized(create, options.meta, META_THRESHOLD)
    except SpecError as err:
        raise SpecError(f"{text}: {err}") from None
    except Exception as err:  # sizes that do not fit together, a tensor too large for 64 bits
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise SpecError(f"{text}: building {cls.__name__} from the configuration failed: "
                        f"{type(err).__name__}: {first}") from None
    named_forward(model, names)
    with user_code(f"tracing {cls.__name__}"):
        src = module_source(model, name=ref.name if ref.form is not HfForm.MODEL_TYPE else cls.__name__,
                            source=text)
    if experts is not None and src.torch_import is not None:
        src.torch_import.model_notes = (experts,)  # on every graph recorded from now on
        if src.graph is not None:
            src.graph.notes.append(experts)
    src.default_input, src.more_inputs, src.default_dtypes = shapes[0], tuple(shapes[1:]), kinds
    src.description = (f"transformers {cls.__name__} from {ref.form.value} {ref.location}"
                       + (" (built on the meta device: no weights)" if meta else ""))
    return src


__all__ = ["TASK_ALIASES", "cls_has_experts", "default_inputs", "experts_note", "heads_of",
           "hf_source", "model_class", "named_forward", "task_classes"]
