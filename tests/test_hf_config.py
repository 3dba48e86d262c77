"""``hf:…`` configurations as data: every form parsed, hostile files refused in one line."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("transformers")

from shapecalc import SpecError  # noqa: E402
from shapecalc.models.hf_config import (HfForm, check_config, config_document,  # noqa: E402
                                        parse_reference, read_config_file)

from pathlib import Path  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "hf"


def test_forms_are_told_apart(tmp_path, monkeypatch):
    monkeypatch.chdir(DATA)
    assert parse_reference("hf:bert-tiny").form is HfForm.FILE  # a folder holding config.json
    ref = parse_reference("hf:bert-tiny/config.json:masked-lm")
    assert (ref.form, ref.location, ref.task) == (HfForm.FILE, "bert-tiny/config.json", "masked-lm")
    ref = parse_reference("hf:llama:causal-lm")
    assert (ref.form, ref.location, ref.task) == (HfForm.MODEL_TYPE, "llama", "causal-lm")
    assert parse_reference("hf:GPT2").location == "gpt2"
    ref = parse_reference("hf:meta-llama/Llama-3.1-8B:causal-lm")
    assert (ref.form, ref.location, ref.task) == (HfForm.HUB, "meta-llama/Llama-3.1-8B", "causal-lm")


@pytest.mark.parametrize("text, words", [
    ("hf:", "name a configuration"),
    ("hf:lama", "did you mean 'hf:llama'"),
    ("hf:missing/config.json", "no such file"),
    ("hf:./nowhere", "no such file"),
])
def test_names_that_name_nothing(text, words):
    with pytest.raises(SpecError, match=words):
        parse_reference(text)


def test_an_empty_folder_is_named(tmp_path):
    with pytest.raises(SpecError, match="holds no config.json"):
        parse_reference(f"hf:{tmp_path}")


def write(tmp_path, doc) -> Path:
    path = tmp_path / "config.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


BASE = {"model_type": "llama", "hidden_size": 64}


@pytest.mark.parametrize("doc, words", [
    ({**BASE, "auto_map": {"AutoModel": "modeling_evil.Evil"}}, "auto_map names Python code"),
    ({**BASE, "trust_remote_code": True}, "trust_remote_code names Python code"),
    ({**BASE, "text_config": {"auto_map": {"AutoConfig": "x.Y"}}}, "text_config.auto_map"),
    ({**BASE, "hidden_size": "big"}, "hidden_size: expected an integer, got 'big'"),
    ({**BASE, "hidden_size": True}, "hidden_size: expected an integer, got True"),
    ({**BASE, "hidden_size": 2**40}, "hidden_size: must be ≤ 2,147,483,647 (every real dimension"),
    ({**BASE, "num_hidden_layers": 10**6}, "num_hidden_layers: must be ≤ 512 (a count of layers"),
    ({**BASE, "num_experts": 10**6}, "num_experts: must be ≤ 65,536 (a count of experts)"),
    ({**BASE, "vocab_size": -1}, "vocab_size: must be ≥ 0, got -1"),
    ({**BASE, "vision_config": {"hidden_size": 2.5}}, "vision_config.hidden_size: expected an integer"),
    ({**BASE, "model_type": "x" * 101}, "model_type: longer than 100 characters"),
    ({**BASE, "vision_config": {"image_size": [224, "x"]}}, "vision_config.image_size"),
    ({"hidden_size": 64}, "no model_type"),
    ([1, 2], "expected a JSON object"),
    ('{"model_type": "llama", "hidden_size": NaN}', "not valid JSON"),
    ('{"model_type": "llama", "hidden_size": 1e999}', "not valid JSON"),
    ('{"model_type": "llama", "hidden_size": ' + "9" * 5000 + "}", "not valid JSON"),
    ('{"model_type": ', "not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "nested"),
])
def test_hostile_configs_are_refused_in_one_line(tmp_path, doc, words):
    started = time.perf_counter()
    with pytest.raises(SpecError) as err:
        read_config_file(write(tmp_path, doc), "config.json")
    assert words in str(err.value)
    assert "\n" not in str(err.value)
    assert time.perf_counter() - started < 10


def test_a_100_mb_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "config.json"
    with open(path, "wb") as handle:  # sparse: no 100 MB is written
        handle.truncate(100 << 20)
    with pytest.raises(SpecError, match="a config.json is at most 4 MiB"):
        read_config_file(path, "config.json")


def test_not_utf8_and_not_a_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b'{"model_type": "\xff"}')
    with pytest.raises(SpecError, match="not UTF-8"):
        read_config_file(path, "c")
    with pytest.raises(SpecError, match="not a regular file"):
        read_config_file(tmp_path, "c")


def test_every_default_configuration_of_transformers_passes():
    """The checks refuse no real configuration: transformers' own defaults, all of them."""
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    checked = 0
    for model_type in CONFIG_MAPPING:
        try:
            doc = AutoConfig.for_model(model_type).to_dict()
        except Exception:  # a configuration that needs arguments of its own
            continue
        doc["model_type"] = doc.get("model_type") or model_type
        check_config(json.loads(json.dumps(doc, default=str)), model_type)
        checked += 1
    assert checked > 300


def test_the_shipped_configs_read(monkeypatch):
    for folder in DATA.iterdir():
        ref = parse_reference(f"hf:{folder}")
        assert config_document(ref)["model_type"]


def fake_cache(root: Path, repo: str, doc: dict) -> None:
    """A Hugging Face hub cache holding one repository's config.json (the layout
    huggingface_hub writes: refs/main names the snapshot)."""
    folder = root / ("models--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / "0123456789abcdef"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(doc))
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0123456789abcdef")


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    fake_cache(tmp_path / "hub", "acme/tiny-llama", json.loads((DATA / "llama-tiny" / "config.json").read_text()))
    return tmp_path / "hub"


def test_a_hub_id_reads_config_json_from_the_cache(offline_cache):
    ref = parse_reference("hf:acme/tiny-llama")
    assert ref.form is HfForm.HUB
    assert config_document(ref)["hidden_size"] == 64


def test_offline_and_not_cached_names_the_local_form(offline_cache):
    with pytest.raises(SpecError) as err:
        config_document(parse_reference("hf:acme/not-cached"))
    message = str(err.value)
    assert "not in the local cache" in message and "HF_HUB_OFFLINE" in message
    assert "hf:path/to/config.json" in message


def test_a_cached_config_is_checked_like_a_file(offline_cache):
    fake_cache(offline_cache, "acme/evil", {**BASE, "auto_map": {"AutoModel": "evil.Evil"}})
    with pytest.raises(SpecError, match="auto_map names Python code"):
        config_document(parse_reference("hf:acme/evil"))


def test_every_size_entry_is_checked_through_its_declared_bound(tmp_path):
    # issue 21: config.json entries pass the same declared Bound set as flags and checkpoints
    from shapecalc.core.bounds import Bound
    from shapecalc.models.hf_config import CONFIG_LIMITS, LAYER_KEYS, SIZE_KEYS

    assert set(CONFIG_LIMITS) == SIZE_KEYS and all(isinstance(b, Bound) for b in CONFIG_LIMITS.values())
    for key, bound in sorted(CONFIG_LIMITS.items()):
        fits = {**BASE, key: [int(bound.high), None, 64.0]}
        assert read_config_file(write(tmp_path, fits), "config.json")[key][0] == bound.high
        with pytest.raises(SpecError, match=rf"^config.json: text_config.{key}: must be ≤ {int(bound.high):,}"):
            read_config_file(write(tmp_path, {**BASE, "text_config": {key: int(bound.high) + 1}}),
                             "config.json")
    assert CONFIG_LIMITS["num_hidden_layers"].high == 512 and "num_hidden_layers" in LAYER_KEYS
