"""Real models nobody here wrote, built from code and configs (nothing downloaded), and the one
check each must pass: parameters, every output and MACs against torch.

Shared by ``tests/test_corpus_real.py`` (a fast subset in CI, the rest marked slow) and
``benchmarks/corpus.py`` (the whole corpus, timed against torchinfo, table for the README).

MACs are compared with ``torch.utils.flop_counter.FlopCounterMode`` ÷ 2 on a real eval
forward, attention on its math path (CPU's fused kernel has no formula in the counter).
FlopCounterMode counts matrix products, convolutions and attention only; shapecalc's rules also
count, by torchinfo's convention, one MAC per bias element and output position and the norm
layers' affine parameters (rows measured by torch count what the counter counts). So
shapecalc may be above the counter by exactly those terms, never below: :data:`MACS_BELOW` and
:data:`MACS_ABOVE` are the allowed ratios.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

MACS_BELOW = 0.99  # -1 %
MACS_ABOVE = 1.05  # +5 %: bias adds and norm affines (see above)

#: timm architectures by family, each at its default input size (``pretrained=False``).
TIMM = {
    "cnn": ["resnet18", "resnet50", "resnext26ts", "seresnet33ts", "regnetx_002", "regnety_002",
            "densenet121", "dla34", "dpn48b", "vgg11", "inception_v3", "xception41",
            "efficientnet_b0", "tf_efficientnet_b0", "tf_efficientnet_cc_b0_4e", "mixnet_s",
            "tf_mixnet_s", "rexnet_100", "hrnet_w18_small", "cspresnet50", "darknet53",
            "res2net50_26w_4s", "resnest14d", "convnext_atto", "nf_resnet26", "repvgg_a0"],
    "mobile": ["ghostnet_100", "ghostnetv3_050", "mobilenetv2_050", "mobilenetv3_small_050",
               "mnasnet_050", "lcnet_050", "fbnetc_100", "efficientformer_l1", "mobilevit_xxs",
               "mobileone_s0", "fastvit_t8", "edgenext_xx_small"],
    "vit": ["vit_tiny_patch16_224", "deit_tiny_patch16_224", "pit_ti_224", "cait_xxs24_224",
            "swin_tiny_patch4_window7_224", "levit_128s", "crossvit_tiny_240", "poolformer_s12",
            "convit_tiny", "xcit_nano_12_p16_224", "tiny_vit_5m_224"],
    "hybrid": ["vit_small_r26_s32_224", "coat_lite_tiny", "maxvit_tiny_tf_224",
               "coatnet_nano_rw_224", "efficientvit_b0"],
    "mlp": ["mixer_s32_224", "resmlp_12_224", "gmlp_ti16_224"],
}

#: The CI subset: fast, and between them every route (fx, hooks) and family.
FAST = ("resnet18", "mobilenetv3_small_050", "tf_efficientnet_cc_b0_4e", "pit_ti_224",
        "hrnet_w18_small", "mixer_s32_224", "hf-bert", "hf-gpt2", "hf-t5", "hf-whisper")


@dataclass
class Entry:
    name: str
    family: str
    build: Callable[[], Any]
    shapes: list[tuple[int, ...]]
    dtypes: list[str] | None = None


@dataclass
class Outcome:
    """What the check found; ``problems`` empty means every figure held."""

    entry: Entry
    params: int = 0
    torch_params: int = 0
    macs: int = 0
    uncounted: int = 0
    torch_macs: int = 0
    route: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.macs / self.torch_macs if self.torch_macs else float("nan")


def _timm(name: str) -> Callable[[], Any]:
    def build() -> Any:
        import timm

        return timm.create_model(name, pretrained=False)

    return build


def _timm_input(name: str) -> tuple[int, ...]:
    import timm

    return (1,) + tuple(timm.get_pretrained_cfg(name).input_size)


def _hf(kind: str) -> Entry:
    """A small transformers model: tiny widths and depths, so the CI subset is fast."""
    import torch
    import transformers as tf

    nn = torch.nn
    small = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=256, vocab_size=1000)

    class EncoderDecoder(nn.Module):
        """How a user calls a seq2seq model: ``model(input_ids=…, decoder_input_ids=…)``."""

        def __init__(self, model: Any, source: str = "input_ids") -> None:
            super().__init__()
            self.model = model
            self.source = source

        def forward(self, source, decoder_input_ids):
            return self.model(**{self.source: source}, decoder_input_ids=decoder_input_ids)

    ids = [(1, 32)]
    table: dict[str, tuple[str, Callable[[], Any], list, list | None]] = {
        "hf-bert": ("encoder", lambda: tf.BertModel(tf.BertConfig(**small)), ids, ["int64"]),
        "hf-roberta": ("encoder", lambda: tf.RobertaModel(tf.RobertaConfig(**small)), ids, ["int64"]),
        "hf-distilbert": ("encoder", lambda: tf.DistilBertModel(tf.DistilBertConfig(
            dim=128, n_layers=2, n_heads=4, hidden_dim=256, vocab_size=1000)), ids, ["int64"]),
        "hf-gpt2": ("decoder", lambda: tf.GPT2LMHeadModel(tf.GPT2Config(
            n_embd=128, n_layer=2, n_head=4, vocab_size=1000, use_cache=False)), ids, ["int64"]),
        "hf-llama": ("decoder", lambda: tf.LlamaForCausalLM(tf.LlamaConfig(
            **small, num_key_value_heads=2, use_cache=False)), ids, ["int64"]),
        "hf-t5": ("encoder-decoder", lambda: EncoderDecoder(tf.T5ForConditionalGeneration(
            tf.T5Config(d_model=128, d_ff=256, num_layers=2, num_heads=4, d_kv=32,
                        vocab_size=1000, use_cache=False))), [(1, 32), (1, 16)], ["int64"] * 2),
        "hf-bart": ("encoder-decoder", lambda: EncoderDecoder(tf.BartModel(tf.BartConfig(
            d_model=128, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
            decoder_attention_heads=4, encoder_ffn_dim=256, decoder_ffn_dim=256,
            vocab_size=1000, use_cache=False))), [(1, 32), (1, 16)], ["int64"] * 2),
        "hf-vit": ("vision", lambda: tf.ViTModel(tf.ViTConfig(
            **{k: v for k, v in small.items() if k != "vocab_size"}, image_size=64,
            patch_size=8)), [(1, 3, 64, 64)], None),
        "hf-convnext": ("vision", lambda: tf.ConvNextModel(tf.ConvNextConfig(
            hidden_sizes=[32, 64, 128, 256], depths=[1, 1, 2, 1])), [(1, 3, 64, 64)], None),
        "hf-whisper": ("speech", lambda: EncoderDecoder(tf.WhisperModel(tf.WhisperConfig(
            d_model=128, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
            decoder_attention_heads=4, encoder_ffn_dim=256, decoder_ffn_dim=256,
            num_mel_bins=80, max_source_positions=64, vocab_size=1000, use_cache=False,
            pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)),
            "input_features"), [(1, 80, 128), (1, 16)], ["float32", "int64"]),
        "hf-wav2vec2": ("speech", lambda: tf.Wav2Vec2Model(tf.Wav2Vec2Config(
            **{k: v for k, v in small.items() if k != "vocab_size"},
            conv_dim=(64, 64), conv_stride=(5, 2), conv_kernel=(10, 3),
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)), [(1, 4000)], None),
    }
    family, build, shapes, dtypes = table[kind]
    return Entry(kind, family, build, shapes, dtypes)


HF = ("hf-bert", "hf-roberta", "hf-distilbert", "hf-gpt2", "hf-llama", "hf-t5", "hf-bart",
      "hf-vit", "hf-convnext", "hf-whisper", "hf-wav2vec2")


def entries(names: tuple[str, ...] | None = None) -> list[Entry]:
    """The corpus (or the named part of it), in a stable order."""
    found = []
    for family, models in TIMM.items():
        for name in models:
            if names is None or name in names:
                found.append(Entry(name, family, _timm(name), [_timm_input(name)]))
    found += [_hf(kind) for kind in HF if names is None or kind in names]
    return found


def inputs(entry: Entry) -> list[Any]:
    import torch

    kinds = entry.dtypes or ["float32"] * len(entry.shapes)
    return [torch.randint(0, 100, s) if k == "int64" else torch.randn(s)
            for s, k in zip(entry.shapes, kinds)]


def torch_figures(model: Any, xs: list[Any]) -> tuple[dict[str, tuple[int, ...]], int]:
    """Every output's shape (labelled as shapecalc labels them) and FlopCounterMode's MACs, from
    one real eval forward with attention on its math path."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from shapecalc.torch_bridge.fx_common import labelled_leaves

    counter = FlopCounterMode(display=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Gradients stay on: the counter's module tracker refuses some no_grad graphs (PiT).
        with counter, sdpa_kernel(SDPBackend.MATH):
            out = model(*xs)
    shapes = {label or "output": tuple(v.shape) for label, v in labelled_leaves(out)
              if isinstance(v, torch.Tensor)}
    return shapes, counter.get_total_flops() // 2


def check(entry: Entry, model: Any | None = None) -> Outcome:
    """Build (unless given), analyse and compare with torch; never raises for the model's sake."""
    import torch

    import shapecalc

    model = (model if model is not None else entry.build()).eval()
    outcome = Outcome(entry)
    shapes = entry.shapes if len(entry.shapes) > 1 else entry.shapes[0]
    try:
        result = shapecalc.analyze(model, shapes, input_dtypes=entry.dtypes)
    except Exception as err:  # a corpus model must never fail: record it as a problem
        outcome.problems.append(f"analyze raised {type(err).__name__}: {err}"[:300])
        return outcome
    outcome.route = str(shapecalc.load_model(model).torch_import.route)
    outcome.params, outcome.macs = result.total_params, result.total_macs
    outcome.uncounted = len(result.uncounted)
    outcome.torch_params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    torch.manual_seed(0)
    real, outcome.torch_macs = torch_figures(model, inputs(entry))
    if outcome.params != outcome.torch_params:
        outcome.problems.append(f"params {outcome.params:,} vs torch {outcome.torch_params:,}")
    mine = {label: tuple(shape) for label, shape in result.outputs}
    if mine != real:
        outcome.problems.append(f"outputs {mine} vs torch {real}")
    if outcome.uncounted:
        outcome.problems.append(f"{outcome.uncounted} nodes not counted: {result.uncounted[:3]}")
    if not MACS_BELOW <= outcome.ratio <= MACS_ABOVE:
        outcome.problems.append(f"MACs {outcome.macs:,} vs FlopCounter/2 {outcome.torch_macs:,} "
                                f"({outcome.ratio:.4f}x)")
    return outcome
