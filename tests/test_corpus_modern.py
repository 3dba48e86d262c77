"""Modern networks (tests/corpus/modern.py) against torch: parameters, every output, MACs.

For every model:

- ``total_params`` equals ``sum(p.numel())`` over the distinct parameters (torch yields a tied
  tensor once), and ``frozen_params`` the same sum over ``requires_grad=False``;
- every output (tuple items, dict values) has the shape of a real eval forward on CPU;
- ``models.torch_models.verify`` finds every node's shape equal to a meta forward;
- total MACs agree with ``torch.utils.flop_counter.FlopCounterMode`` on that real forward.
  FlopCounterMode counts matrix products only (mm/bmm/addmm's product, convolutions,
  attention); shapecalc also counts, by torchinfo's convention, one MAC per bias element and
  output position and the norm layers' affine parameters. So shapecalc is never below the
  FLOP counter and at most :data:`MACS_TOLERANCE` above it: those extras are about one
  reduction-size-th of each layer's products, 6.3 % at most here (the small ViT, width 64).
  The real forward runs with torch's fused fast paths off (``mha`` fast path, oneDNN RNNs),
  which FlopCounterMode cannot see into; they compute the same products.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from corpus import modern  # noqa: E402

import shapecalc  # noqa: E402
from shapecalc.core.notes import NoteKind  # noqa: E402
from shapecalc.models.torch_models import verify  # noqa: E402

#: shapecalc MACs / FlopCounterMode MACs may exceed 1 by this much (biases and norms, see above).
MACS_TOLERANCE = 0.07

CASES = {
    "vit_small": (modern.small_vit, [(2, 3, 32, 32)], None),
    "swin": (modern.SwinTiny, [(2, 3, 32, 32)], None),
    "convnext": (modern.ConvNeXtTiny, [(2, 3, 32, 32)], None),
    "lstm": (modern.LSTMClassifier, [(2, 12)], ["int64"]),
    "gru": (modern.GRUClassifier, [(2, 9, 20)], None),
    "text": (modern.TextClassifier, [(2, 16)], ["int64"]),
    "tied_lm": (modern.TiedLanguageModel, [(2, 10)], ["int64"]),
    "siamese": (modern.Siamese, [(2, 3, 16, 16), (2, 3, 16, 16)], None),
    "detection": (modern.DetectionHead, [(1, 3, 32, 32)], None),
    "aux_head": (modern.AuxHeadNet, [(1, 3, 16, 16)], None),
}


def inputs(shapes, dtypes):
    kinds = dtypes or ["float32"] * len(shapes)
    return [torch.randint(1, 50, s) if k == "int64" else torch.randn(s) for s, k in zip(shapes, kinds)]


def flat_outputs(value, label=""):
    """(label, tensor) pairs labelled as shapecalc labels them."""
    if isinstance(value, torch.Tensor):
        return [(label or "output", value)]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in flat_outputs(v, f"{label}.{k}" if label else str(k))]
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return [p for k, v in zip(value._fields, value) for p in flat_outputs(v, f"{label}.{k}" if label else k)]
    return [p for i, v in enumerate(value) for p in flat_outputs(v, f"{label}[{i}]" if label else f"output[{i}]")]


def real_forward(model, xs):
    """Eval forward on CPU with MACs counted, fused fast paths off; the model's mode restored."""
    from torch.utils.flop_counter import FlopCounterMode

    was = model.training
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    counter = FlopCounterMode(display=False)
    try:
        model.eval()
        with warnings.catch_warnings():  # oneDNN's flag setter warns about Intel GPUs
            warnings.simplefilter("ignore", UserWarning)
            with counter, torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
                out = model(*xs)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
        model.train(was)
    return out, counter.get_total_flops() // 2


@pytest.mark.parametrize("name", sorted(CASES))
def test_modern_model_matches_torch(name):
    build, shapes, dtypes = CASES[name]
    torch.manual_seed(0)
    model = build()
    shape_arg = shapes if len(shapes) > 1 else shapes[0]
    result = shapecalc.analyze(model, shape_arg, input_dtypes=dtypes)
    params = list(model.parameters())
    assert result.total_params == sum(p.numel() for p in params)
    assert result.frozen_params == sum(p.numel() for p in params if not p.requires_grad)
    out, reference_macs = real_forward(model, inputs(shapes, dtypes))
    assert result.outputs == [(label, tuple(t.shape)) for label, t in flat_outputs(out)]
    assert not any(n.kind is NoteKind.HOOK_FALLBACK for n in result.notes)  # fx read them all
    assert reference_macs <= result.total_macs <= reference_macs * (1 + MACS_TOLERANCE), (
        result.total_macs, reference_macs)
    checks = verify(model, shape_arg, input_dtypes=dtypes)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]


def test_vit_b_16_has_torchvisions_parameter_count():
    """The real ViT-B/16 layout at 224×224 and 1,000 classes: 86,567,656 parameters (built on
    the meta device: no memory, and the analysis never needs values)."""
    with torch.device("meta"):
        model = modern.ViT()
    result = shapecalc.analyze(model, (1, 3, 224, 224))
    assert result.total_params == sum(p.numel() for p in model.parameters()) == 86_567_656
    assert result.output_shape == (1, 1000)
    by_name = {r.name: r for r in result.records}
    assert by_name["conv_proj"].params == 768 * 3 * 16 * 16 + 768
    used = [str(n) for r in result.records for n in r.notes if getattr(n, "kind", None) is NoteKind.PARAM_USED]
    assert any("class_token (768)" in n for n in used)
    assert any("encoder.pos_embedding (151,296)" in n for n in used)
    with pytest.raises(shapecalc.ShapeError):  # torch._assert(h == image_size) holds in torch too
        shapecalc.analyze(model, (1, 3, 160, 160))


def test_parameters_read_in_forward_are_attributed_with_a_note():
    swin = shapecalc.analyze(modern.SwinTiny(), (1, 3, 32, 32))
    table_notes = [str(n) for r in swin.records for n in r.notes]
    assert sum("relative_position_bias_table (196)" in n for n in table_notes) == 2
    convnext = shapecalc.analyze(modern.ConvNeXtTiny(), (1, 3, 32, 32))
    notes = " ".join(str(n) for r in convnext.records for n in r.notes)
    for name in ("stage1.0.gamma", "stage2.gamma", "stem.1.weight", "stem.1.bias", "down.0.weight"):
        assert f"uses parameter {name} " in notes


def test_tuple_modules_count_once_and_unused_state_has_no_row():
    model = modern.LSTMClassifier()
    result = shapecalc.analyze(model, (2, 12), input_dtypes=["int64"])
    lstm_rows = [r for r in result.records if r.name.startswith("lstm")]
    assert [r.name for r in lstm_rows] == ["lstm"]
    assert lstm_rows[0].params == sum(p.numel() for p in model.lstm.parameters())
    gru = shapecalc.analyze(modern.GRUClassifier(), (2, 9, 20))
    rows = [r for r in gru.records if "GRU" in r.description]
    assert rows[0].macs > 0 and all(r.macs == 0 for r in rows[1:])  # h[-2], h[-1]: one GRU run
    assert any(getattr(n, "kind", None) is NoteKind.TUPLE_ITEM for r in rows[1:] for n in r.notes)


def test_shared_tied_and_training_only_weights():
    siamese = shapecalc.analyze(modern.Siamese(), [(1, 3, 16, 16), (1, 3, 16, 16)])
    assert [r.shared for r in siamese.records if r.name.startswith("encoder.0")] == [False, True]
    tied = shapecalc.analyze(modern.TiedLanguageModel(), (1, 10), input_dtypes=["int64"])
    decoder = tied.record("decoder")
    assert decoder.params == 500  # the bias: its weight is the embedding's, counted there
    assert any(getattr(n, "kind", None) is NoteKind.PARAM_TIED and n.get("owner") == "embed"
               for n in decoder.notes)
    model = modern.AuxHeadNet()
    ev = shapecalc.analyze(model, (1, 3, 16, 16))
    [unused] = [n for n in ev.notes if n.kind is NoteKind.PARAMS_UNUSED]
    assert unused.get("count") == sum(p.numel() for p in model.aux.parameters())
    tr = shapecalc.analyze(model, (1, 3, 16, 16), mode="train")
    assert [label for label, _ in tr.outputs] == ["logits", "aux_logits"]
    assert tr.total_params == ev.total_params and tr.total_macs > ev.total_macs
