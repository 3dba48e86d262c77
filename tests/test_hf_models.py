"""``hf:…`` models: transformers' own classes from shipped configurations, nothing downloaded,
counted and shaped as torch has them; the 405B shape on the meta device within its bounds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from shapecalc import SpecError, analyze, load_model  # noqa: E402
from shapecalc.cli import main  # noqa: E402
from shapecalc.core.extras import MissingDependency  # noqa: E402
from shapecalc.models.build_options import BUILD_OPTIONS, BuildOptions  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "hf"
REPO = Path(__file__).resolve().parents[1]


def real_model(folder: str):
    """transformers' own class for the shipped configuration, with real weights."""
    doc = json.loads((DATA / folder / "config.json").read_text())
    config = transformers.AutoConfig.for_model(**doc)
    config.use_cache = False
    return getattr(transformers, doc["architectures"][0])(config).eval()


def real_outputs(model, inputs: dict) -> dict[str, tuple]:
    with torch.no_grad():
        out = model(**inputs)
    return {k: tuple(v.shape) for k, v in out.items() if isinstance(v, torch.Tensor)}


@pytest.mark.parametrize("folder", ["bert-tiny", "gpt2-tiny", "llama-tiny", "t5-tiny", "vit-tiny"])
def test_shipped_configs_match_transformers(folder):
    src = load_model(f"hf:{DATA / folder}")
    result = analyze(src)
    model = real_model(folder)
    assert type(src.torch_import.module).__name__ == type(model).__name__
    assert result.total_params == sum(p.numel() for p in model.parameters())
    names = result.graph.input_labels
    inputs = {name: (torch.zeros(shape, dtype=torch.long) if kind == "int64" else torch.zeros(shape))
              for name, shape, kind in zip(names, result.input_shapes, result.input_dtypes)}
    assert dict(result.outputs) == real_outputs(model, inputs)


def test_token_inputs_default_to_1x128_and_follow_seq_len():
    src = load_model(f"hf:{DATA / 'bert-tiny'}")
    assert (src.default_shapes(), src.default_dtypes) == ([(1, 128)], ("int64",))
    assert load_model(f"hf:{DATA / 'bert-tiny'}", seq_len=32).default_shapes() == [(1, 32)]
    with pytest.raises(SpecError, match="--seq-len 300: gpt2 takes at most 256 positions"):
        load_model(f"hf:{DATA / 'gpt2-tiny'}", seq_len=300)


def test_an_encoder_decoder_gets_decoder_inputs():
    result = analyze(f"hf:{DATA / 't5-tiny'}")
    assert result.graph.input_labels == ("input_ids", "decoder_input_ids")
    assert result.input_shapes == ((1, 128), (1, 128)) and result.input_dtypes == ("int64", "int64")
    shorter = analyze(f"hf:{DATA / 't5-tiny'}", [(1, 20), (1, 7)])
    assert dict(shorter.outputs)["logits"] == (1, 7, 1000)


def test_pixels_for_a_vision_model():
    src = load_model(f"hf:{DATA / 'vit-tiny'}")
    assert src.default_shapes() == [(1, 3, 32, 32)] and src.default_dtypes == ("float32",)


@pytest.mark.parametrize("text, cls", [
    ("hf:gpt2", "GPT2Model"),
    ("hf:gpt2:causal-lm", "GPT2LMHeadModel"),
    ("hf:gpt2:text-generation", "GPT2LMHeadModel"),
    (f"hf:{DATA / 'bert-tiny'}", "BertForMaskedLM"),  # the architectures entry
    (f"hf:{DATA / 'bert-tiny'}:model", "BertModel"),
    (f"hf:{DATA / 'bert-tiny' / 'config.json'}:sequence-classification", "BertForSequenceClassification"),
])
def test_the_class_built(text, cls):
    assert type(load_model(text, meta=True).torch_import.module).__name__ == cls


def test_gpt2_counts_its_tied_embedding_once():
    """torchinfo says 163.0 M for GPT-2 with its head: the tied matrix twice."""
    assert analyze("hf:gpt2").total_params == 124_439_808
    assert analyze("hf:gpt2:causal-lm").total_params == 124_439_808


def test_a_head_the_model_type_lacks_is_named():
    with pytest.raises(SpecError, match="llama has no 'fish' head; its heads: model, causal-lm"):
        load_model("hf:llama:fish")


def test_sizes_that_do_not_fit_together_are_one_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "bert", "hidden_size": 64, "num_attention_heads": 5}))
    with pytest.raises(SpecError) as err:
        load_model(f"hf:{path}")
    assert "\n" not in str(err.value) and "config" in str(err.value)


def test_sizes_whose_count_overflows_are_refused(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "hidden_size": 2**30, "intermediate_size": 2**31 - 1,
                                "vocab_size": 8, "num_hidden_layers": 3, "num_attention_heads": 8,
                                "num_key_value_heads": 8}))
    with pytest.raises(SpecError, match="more than a 64-bit count holds"):
        load_model(f"hf:{path}")


def test_the_70b_shape_is_exact_on_the_meta_device():
    src = load_model(f"hf:{DATA / 'llama-3-70b'}")
    assert next(src.torch_import.module.parameters()).device.type == "meta"
    assert analyze(src).total_params == 70_553_706_496


@pytest.mark.slow
def test_the_405b_shape_stays_within_its_memory_bound():
    """The whole process (torch and transformers included) under 500 MiB, params exact."""
    # The child's own peak is VmHWM, the high-water mark of its own address space. Not
    # ru_maxrss: Linux carries the parent's peak across the fork and exec into the child's
    # ru_maxrss, so inside a large pytest session it read 1.2-1.4 GB for a 386 MiB process.
    probe = (
        "import re\n"
        "from shapecalc import analyze\n"
        f"result = analyze('hf:{DATA / 'llama-3.1-405b'}')\n"
        "status = open('/proc/self/status').read()\n"
        "print(result.total_params, re.search(r'VmHWM:\\s*(\\d+) kB', status).group(1))\n"
    )
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc to read the child's own peak memory")
    # A clean environment: the whole suite's session leaves variables that are not the user's.
    env = {key: os.environ[key] for key in ("PATH", "HOME", "PYTHONPATH") if key in os.environ}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    params, rss_kib = map(int, done.stdout.split()[-2:])
    assert params == 405_853_388_800
    assert rss_kib < 500 * 1024, f"peak {rss_kib // 1024} MiB; stderr: {done.stderr[-500:]}"


def test_cli_reads_an_untyped_input_as_tokens(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["show", f"hf:{DATA / 'bert-tiny'}", "--input", "1x16", "--json"])
    assert exit_.value.code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_shape"] == [1, 16]


def test_cli_seq_len_and_bad_head(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["show", f"hf:{DATA / 'bert-tiny'}", "--seq-len", "24", "--json"])
    assert exit_.value.code == 0
    assert json.loads(capsys.readouterr().out)["input_shape"] == [1, 24]
    with pytest.raises(SystemExit) as exit_:
        main(["show", "hf:llama:fish"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1


def test_without_transformers_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependency, match="needs transformers, which is not installed: pip install"):
        load_model("hf:bert")


@pytest.mark.parametrize("args", [
    ["check", "{m}"],
    ["graph", "{m}", "-o", "{tmp}/g.dot", "--depth", "2"],
    ["report", "{m}", "-o", "{tmp}/r.html", "--no-graph"],
    ["memory", "{m}", "--json"],
    ["show", "{m}", "--meta", "--seq-len", "16", "--json"],
])
def test_every_command_takes_an_hf_model(capsys, tmp_path, args):
    argv = [a.format(m=f"hf:{DATA / 'bert-tiny'}", tmp=tmp_path) for a in args]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    captured = capsys.readouterr()
    assert exit_.value.code == 0, captured.err
    assert "Traceback" not in captured.err
    assert BUILD_OPTIONS.get() == BuildOptions()  # the flags held for that command only


# ------------------------------------------------------------------ mixtures of experts
@pytest.mark.parametrize("folder, k, experts", [("mixtral-tiny", 2, 4), ("qwen2-moe-tiny", 2, 6)])
def test_a_mixture_of_experts_is_counted_as_k_experts_per_token(folder, k, experts):
    """Mixtral (4 experts, 2 per token) and Qwen2-MoE (6 experts, 2 per token, and a shared
    expert every token runs): parameters and output shapes as the real model's, MACs as torch's
    FLOP counter on a real forward through the experts each token picked."""
    from torch.utils.flop_counter import FlopCounterMode

    for meta in (False, True):  # built for real (small) and on the meta device
        src = load_model(f"hf:{DATA / folder}", seq_len=16, meta=meta)
        result = analyze(src)
        doc = json.loads((DATA / folder / "config.json").read_text())
        config = transformers.AutoConfig.for_model(**doc)
        config.use_cache = False
        torch.manual_seed(0)
        # eager experts and attention: a loop over the experts the router picked, each a counted
        # F.linear, and attention as plain matmuls (FlopCounterMode counts no CPU sdpa kernel)
        model = getattr(transformers, doc["architectures"][0])._from_config(
            config, attn_implementation="eager", experts_implementation="eager")
        ids = torch.randint(0, 1000, (1, 16))
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            out = model(input_ids=ids)
        assert result.total_params == sum(p.numel() for p in model.parameters())
        assert dict(result.outputs) == {"logits": tuple(out.logits.shape)}
        real = counter.get_total_flops() // 2
        assert -0.01 <= result.total_macs / real - 1 <= 0.05, (result.total_macs, real)
        # Mixtral's linears have no bias: exact. Qwen2's q/k/v biases are MACs by shapecalc's
        # convention (every weight and bias once per position), not by torch's counter (mm).
        bias_macs = 2 * 16 * (64 + 32 + 32) if folder == "qwen2-moe-tiny" else 0
        assert result.total_macs == real + bias_macs
        notes = [str(n) for n in result.graph.notes]
        assert any(f"every token runs {k} of {experts} experts" in n for n in notes), notes
        # every expert weight is counted at the op that reads it, none left unplaced
        assert not any("no recorded module" in n for n in notes), notes
        stacked = [r for r in result.records if ".experts." in r.name and r.params]
        size = doc.get("moe_intermediate_size", doc["intermediate_size"])
        assert sum(r.params for r in stacked) == 2 * experts * 3 * size * 64  # gate, up, down


def test_the_mixtral_defaults_analyse_on_the_meta_device():
    result = analyze(load_model("hf:mixtral", seq_len=16))
    # Mixtral-8x7B's published size less its 131,072,000-weight language-model head
    assert result.total_params == 46_702_792_704 - 32000 * 4096
    assert result.total_macs is not None
