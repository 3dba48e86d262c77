"""What ``hf:…`` names, read as data: a Hugging Face configuration, never weights, never code.

Accepted forms (``:TASK`` optional on each, e.g. ``hf:llama:causal-lm``)::

    hf:path/to/config.json     a local configuration file
    hf:path/to/folder          a folder holding config.json
    hf:llama / hf:bert / hf:gpt2   a model type with transformers' defaults
    hf:org/name                a hub id: only config.json is fetched, and cached

A path that exists wins over a model type, and a model type over a hub id (``hf:gpt2`` is the
model type; its defaults are GPT-2's). A configuration is JSON read within a size limit, with
its sizes checked before anything is built from them, and ``auto_map``/``trust_remote_code``
entries, which name Python files of a repository, are refused: nothing a file holds is run.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from shapecalc.core.bounds import MAX_DIGITS, Bound
from shapecalc.core.errors import ArgumentError, SpecError
from shapecalc.models.model_source import HF_PREFIX

PREFIX = HF_PREFIX

#: Largest config.json read: real ones are kilobytes (a 21,843-label id2label is under 1 MiB).
MAX_CONFIG_BYTES = 4 << 20
#: Largest number a size entry may hold: every real dimension fits in 31 bits.
MAX_SIZE = 2**31 - 1
#: Most layers one entry may ask for: how long even a meta build takes grows with it.
MAX_LAYERS = 512
#: Most experts: transformers stores them as stacked tensors, but some families as modules.
MAX_EXPERTS = 65536
#: Nesting of JSON objects and lists in a configuration (real ones nest 3 or 4 deep).
MAX_NESTING = 32
#: Entries that would make transformers import and run Python from the repository.
CODE_ENTRIES = ("auto_map", "trust_remote_code")
#: Seconds to wait for the hub before saying it cannot be reached.
HUB_TIMEOUT = 5.0

#: Entries that multiply modules: building even on the meta device takes time in proportion.
LAYER_KEYS = frozenset({"num_hidden_layers", "num_layers", "num_decoder_layers", "n_layer", "n_layers",
                        "encoder_layers", "decoder_layers"})
EXPERT_KEYS = frozenset({"num_local_experts", "num_experts", "n_routed_experts", "n_shared_experts"})
COUNT_KEYS = LAYER_KEYS | EXPERT_KEYS
#: Entries that size tensors, across transformers' architectures (the names vary by family).
SIZE_KEYS = COUNT_KEYS | frozenset({
    "hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "vocab_size",
    "max_position_embeddings", "head_dim", "type_vocab_size", "embedding_size", "n_embd", "n_head",
    "n_inner", "n_positions", "n_ctx", "n_heads", "d_model", "d_ff", "d_kv", "num_heads", "dim",
    "hidden_dim", "ffn_dim", "encoder_attention_heads", "decoder_attention_heads", "encoder_ffn_dim",
    "decoder_ffn_dim", "moe_intermediate_size", "shared_expert_intermediate_size",
    "num_experts_per_tok", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim",
    "v_head_dim", "image_size", "patch_size", "num_channels", "projection_dim",
})
#: The declared check of every entry that sizes a model (:class:`~shapecalc.core.bounds.Bound`,
#: as for flags, checkpoint fields and API arguments): a whole number or null (transformers
#: derives it), from 0 to the entry's maximum.
_SIZE = Bound(int, 0, MAX_SIZE, optional=True, why="every real dimension fits in 31 bits")
_LAYERS = Bound(int, 0, MAX_LAYERS, optional=True,
                why="a count of layers: even a meta build takes time in proportion")
_EXPERTS = Bound(int, 0, MAX_EXPERTS, optional=True, why="a count of experts")
CONFIG_LIMITS: dict[str, Bound] = {**dict.fromkeys(SIZE_KEYS, _SIZE), **dict.fromkeys(LAYER_KEYS, _LAYERS),
                                   **dict.fromkeys(EXPERT_KEYS, _EXPERTS)}
#: The model type names a transformers configuration class; real ones are a few words.
MODEL_TYPE = Bound(str, high=100)
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?$")


class HfForm(Enum):
    """Which of the accepted forms an ``hf:`` MODEL is."""

    FILE = "file"
    MODEL_TYPE = "model type"
    HUB = "hub id"


@dataclass(frozen=True)
class HfReference:
    """An ``hf:`` MODEL split into what it names and the task head asked for (``None``: the
    configuration's own ``architectures`` entry, else the bare model)."""

    form: HfForm
    location: str  # the file, the model type or the hub id
    task: str | None
    text: str  # the MODEL as given, for messages

    @property
    def name(self) -> str:
        """A short name for tables: the folder, the model type or the repository's name."""
        if self.form is HfForm.FILE:
            path = Path(self.location)
            return (path.parent.name if path.name == "config.json" else path.stem) or "model"
        return self.location.rsplit("/", 1)[-1]


def _transformers_configs() -> Any:
    from shapecalc.core.extras import require

    require("transformers", f"an {HF_PREFIX} model", "models")
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    return CONFIG_MAPPING


def _local(location: str) -> Path | None:
    path = Path(location).expanduser()
    if path.is_dir():
        path = path / "config.json"
        if not path.exists():
            raise SpecError(f"{HF_PREFIX}{location}: the folder holds no config.json")
        return path
    return path if path.exists() else None


def parse_reference(text: str) -> HfReference:
    """``"hf:llama:causal-lm"`` → its form, location and task; nothing is read yet."""
    rest = text[len(HF_PREFIX):].strip()
    if not rest:
        raise SpecError(f"{HF_PREFIX}: name a configuration: hf:path/to/config.json, a model type "
                        "(hf:llama) or a hub id (hf:org/name)")
    candidates = [(rest, None)]
    if ":" in rest:
        head, task = rest.rsplit(":", 1)
        candidates.append((head, task.strip() or None))
    for location, task in candidates:
        if _local(location) is not None:
            return HfReference(HfForm.FILE, location, task, text)
    location, task = candidates[-1]
    if location.lower() in _transformers_configs():
        return HfReference(HfForm.MODEL_TYPE, location.lower(), task, text)
    if location.endswith(".json") or location.startswith((".", "/", "~")):
        raise SpecError(f"{HF_PREFIX}{location}: no such file")
    if _HUB_ID.match(location) and "/" in location:
        return HfReference(HfForm.HUB, location, task, text)
    import difflib

    hint = difflib.get_close_matches(location.lower(), list(_transformers_configs()), n=3)
    shown = " or ".join(f"'{HF_PREFIX}{h}'" for h in hint)
    raise SpecError(f"{HF_PREFIX}{location}: not a file, a transformers model type or a hub id "
                    "(org/name)" + (f"; did you mean {shown}?" if hint else ""))


# ------------------------------------------------------------------ reading a file, bounded
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:  # beyond 64 bits: refuse before converting (digit bombs)
        raise ValueError(f"the number {text[:12]}… ({len(text)} digits) is too large")
    return int(text)


def _bounded_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:24]} is too large")
    return value


def read_config_file(path: Path, shown: str) -> dict[str, Any]:
    """The JSON object in ``path`` (a regular file under :data:`MAX_CONFIG_BYTES`), checked by
    :func:`check_config`; ``shown`` names it in messages."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(f"{shown}: not a regular file")
        if info.st_size > MAX_CONFIG_BYTES:
            raise SpecError(f"{shown}: {info.st_size:,} bytes; a config.json is at most "
                            f"{MAX_CONFIG_BYTES >> 20} MiB")
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise SpecError(f"{shown}: cannot be read ({err.strerror or err})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise SpecError(f"{shown}: larger than {MAX_CONFIG_BYTES >> 20} MiB, the limit for a config.json")
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant,
                         parse_int=_bounded_int, parse_float=_bounded_float)
    except UnicodeDecodeError:
        raise SpecError(f"{shown}: not UTF-8 text") from None
    except RecursionError:
        raise SpecError(f"{shown}: nested too deeply") from None
    except ValueError as err:  # JSONDecodeError is a ValueError, and so are the bounds above
        raise SpecError(f"{shown}: not valid JSON: {str(err)[:200]}") from None
    check_config(doc, shown)
    return doc


def _where(path: tuple[str, ...]) -> str:
    return ".".join(path) or "the top level"


def _check_size(key: str, value: Any, path: tuple[str, ...], shown: str) -> None:
    """A size entry, or a list or object of them (one per stage, per tower), against its
    declared :data:`CONFIG_LIMITS` bound; ``64.0`` counts as the whole number it is."""
    bound = CONFIG_LIMITS[key]
    items = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
    for item in items:
        if type(item) is float and item.is_integer():
            item = int(item)
        try:
            bound.check(_where(path), item)
        except ArgumentError as err:
            raise SpecError(f"{shown}: {err}") from None


def check_config(doc: Any, shown: str) -> None:
    """Refuse a configuration that is not an object, names code, or holds a size no model has.

    Walks every nested object (a vision tower's ``vision_config`` too) with its own bound on
    depth, so a hostile file costs time linear in its bytes, which are bounded."""
    if not isinstance(doc, dict):
        raise SpecError(f"{shown}: expected a JSON object with a model_type, got {type(doc).__name__}")
    stack: list[tuple[Any, tuple[str, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_NESTING:
            raise SpecError(f"{shown}: nested deeper than {MAX_NESTING} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if key in CODE_ENTRIES and item not in (None, False, {}, []):
                    raise SpecError(f"{shown}: {_where(path + (key,))} names Python code from the "
                                    "model's repository; shapecalc never runs code from a "
                                    "configuration (remove the entry to analyse the architecture)")
                if key in SIZE_KEYS:
                    _check_size(key, item, path + (key,), shown)
                if isinstance(item, (dict, list)):
                    stack.append((item, path + (key,)))
        elif isinstance(value, list):
            stack.extend((item, path + (f"[{i}]",)) for i, item in enumerate(value)
                         if isinstance(item, (dict, list)))
    model_type = doc.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise SpecError(f"{shown}: no model_type entry (a string such as \"llama\"); it says "
                        "which architecture the configuration is for")
    try:
        MODEL_TYPE.check("model_type", model_type)
    except ArgumentError as err:
        raise SpecError(f"{shown}: {err}") from None


# ------------------------------------------------------------------ the hub
def _hub_reachable(endpoint: str) -> bool:
    import socket
    from urllib.parse import urlparse

    url = urlparse(endpoint)
    host = url.hostname
    if not host:
        return False
    try:
        with socket.create_connection((host, url.port or (443 if url.scheme == "https" else 80)),
                                      timeout=HUB_TIMEOUT):
            return True
    except OSError:
        return False


def hub_config(repo_id: str, shown: str) -> Path:
    """``config.json`` of ``repo_id`` from the local Hugging Face cache, else fetched into it
    (that file only, within :data:`MAX_CONFIG_BYTES`); offline, one line naming the local form."""
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "config.json", cache_dir=constants.HF_HUB_CACHE)
    if isinstance(cached, str) and os.path.isfile(cached):
        return Path(cached)
    offline = constants.HF_HUB_OFFLINE or not _hub_reachable(constants.ENDPOINT)
    if offline:
        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else \
            f"the hub ({constants.ENDPOINT}) cannot be reached"
        raise SpecError(f"{shown}: config.json of {repo_id} is not in the local cache and {why}; "
                        "download config.json and name the file: hf:path/to/config.json")
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    try:
        meta = get_hf_file_metadata(hf_hub_url(repo_id, "config.json"), timeout=HUB_TIMEOUT * 2)
        if meta.size is not None and meta.size > MAX_CONFIG_BYTES:
            raise SpecError(f"{shown}: its config.json is {meta.size:,} bytes; at most "
                            f"{MAX_CONFIG_BYTES >> 20} MiB")
        return Path(hf_hub_download(repo_id, "config.json", etag_timeout=HUB_TIMEOUT * 2))
    except SpecError:
        raise
    except Exception as err:  # no such repository, gated, a network failure midway
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise SpecError(f"{shown}: fetching config.json of {repo_id} failed: {first}") from None


def config_document(ref: HfReference) -> dict[str, Any] | None:
    """The configuration's JSON object for a file or a hub id; ``None`` for a model type
    (its defaults are transformers' own)."""
    if ref.form is HfForm.MODEL_TYPE:
        return None
    if ref.form is HfForm.HUB:
        return read_config_file(hub_config(ref.location, ref.text), f"{ref.text} (config.json)")
    path = _local(ref.location)
    assert path is not None
    return read_config_file(path, f"{HF_PREFIX}{ref.location}")


__all__ = ["CODE_ENTRIES", "CONFIG_LIMITS", "COUNT_KEYS", "PREFIX", "SIZE_KEYS", "HfForm", "HfReference", "MAX_CONFIG_BYTES", "MAX_EXPERTS", "MAX_LAYERS", "MAX_SIZE",
           "check_config", "config_document", "hub_config", "parse_reference", "read_config_file"]
