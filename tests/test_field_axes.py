"""Receptive fields through layers that move, merge or mix whole axes (channels-last blocks,
tokens), against autograd: random chains of convs and pools with ConvNeXt-style NHWC blocks,
ViT-style token round trips, Linears and softmaxes along one axis. The part of each output's
field inside the image must be exactly the input pixels its gradient reaches, and the
theoretical field must hold them; real torchvision and timm ConvNeXts are checked the same way.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shapecalc.core.arithmetic import FieldRule
from shapecalc.core.arithmetic.field_axes import (
    FieldAxis, Mixed, Permuted, Placed, Read, Reshaped, follow, trailing,
)
from shapecalc.core.blocks import Sequential
from shapecalc.core.errors import LayerError
from shapecalc.core.graph import analyze_graph
from shapecalc.core.image_fields import fields_in_image
from shapecalc.core.layers import AvgPool2d, Conv2d, Flatten, GELU, LayerNorm, Linear, Softmax
from shapecalc.core.layers.functional import Mean, Permute, Reshape, Transpose

torch = pytest.importorskip("torch")


def test_a_permute_round_trip_puts_the_fields_back():
    shape = (1, 8, 5, 6)
    nhwc = follow(trailing(shape), Permuted(shape, (0, 2, 3, 1)))
    assert nhwc.where == (FieldAxis(1, 1, 5), FieldAxis(2, 1, 6)) and set(nhwc.reads) == {Read.KEEP}
    back = follow(nhwc.where, Permuted((1, 5, 6, 8), (0, 3, 1, 2)))
    assert back.where == trailing(shape)


def test_tokens_hold_both_fields_and_give_them_back():
    """(N, C, H, W) → (N, C, H·W): H steps by W along the token axis, W by 1; reshaped back,
    each is its own axis again. Splitting H itself (windows) cannot be followed."""
    tokens = follow(trailing((1, 8, 5, 6)), Reshaped((1, 8, 5, 6), (1, 8, 30)))
    assert tokens.where == (FieldAxis(2, 6, 5), FieldAxis(2, 1, 6))
    assert follow(tokens.where, Reshaped((1, 8, 30), (1, 8, 5, 6))).where == trailing((1, 8, 5, 6))
    assert follow(trailing((1, 8, 6, 6)), Reshaped((1, 8, 6, 6), (1, 8, 2, 3, 6))) is None
    # channels regrouped around untouched positions: the fields stay where they are
    assert follow(trailing((1, 8, 5, 6)), Reshaped((1, 8, 5, 6), (1, 2, 4, 5, 6))).where == \
        (FieldAxis(3, 1, 5), FieldAxis(4, 1, 6))


def test_a_linear_reads_the_axis_it_runs_along():
    """Over the channels of a channels-last map: each position alone; along W of an
    (N, C, H, W) map: all of W; over every field axis: global."""
    nhwc = (FieldAxis(1, 1, 5), FieldAxis(2, 1, 6))
    assert follow(nhwc, Mixed((1, 5, 6, 8), (1, 5, 6, 16), frozenset({3}))).reads == (Read.KEEP,) * 2
    along_w = follow(trailing((1, 8, 5, 6)), Mixed((1, 8, 5, 6), (1, 8, 5, 3), frozenset({3})))
    assert along_w.reads == (Read.KEEP, Read.WHOLE) and along_w.where[1] == FieldAxis(3, 1, 3)


# ------------------------------------------------------------------ chains against autograd
def _to_torch(layer, generator):
    """The torch op for ``layer`` (the functional layers have no nn module), with random
    weights: all-ones weights would cancel (a LayerNorm's outputs sum to a constant)."""
    if isinstance(layer, Permute):
        return lambda x: x.permute(*layer.dims)
    if isinstance(layer, Transpose):
        return lambda x: x.transpose(layer.dim0, layer.dim1)
    if isinstance(layer, Reshape):
        return lambda x: x.reshape(*(x.shape[i] if v == 0 else v for i, v in enumerate(layer.shape)))
    if isinstance(layer, Flatten):
        return lambda x: x.flatten(layer.start_dim, layer.end_dim)
    if isinstance(layer, Mean):
        return lambda x: x.mean(layer.dim, keepdim=layer.keepdim)
    from tf_same_helpers import reference_module

    module = reference_module(layer).double()
    with torch.no_grad():
        for p in module.parameters():
            # Scaled by the fan-in, so values stay near 1 through a chain: unscaled, two
            # Linears along W made inputs to GELU of -40, where its gradient underflows to an
            # exact 0 and autograd seemed to reach no pixel at all.
            scale = p[0].numel() ** -0.5 if p.dim() > 1 else 1.0
            p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64) * scale)
    return module.eval()


def _gradient_spans(layers, shape):
    """For every output pixel (its channels summed), per input axis the first and last pixel
    its gradient reaches (``None`` if none): one vectorised jacobian for all of them."""
    generator = torch.Generator().manual_seed(0)
    ops = [_to_torch(layer, generator) for layer in layers]

    def run(x):
        for op in ops:
            x = op(x)
        return x[0].sum(0)

    x = torch.randn(shape, dtype=torch.float64, generator=generator)
    jac = torch.autograd.functional.jacobian(run, x, vectorize=True)  # (H', W', 1, C, H, W)
    reach = jac[:, :, 0].abs().sum(2) != 0  # (H', W', H, W)

    def spans(i, j):
        hit = reach[i, j].nonzero()
        if not len(hit):
            return None
        return tuple((int(hit[:, a].min()), int(hit[:, a].max())) for a in range(2))

    return spans


def _channels_last(c: int):
    """ConvNeXt's block middle: to NHWC, position-wise layers over the channels, back."""
    inner = st.lists(st.sampled_from([LayerNorm(c), Linear(c, c), GELU()]),
                     min_size=1, max_size=3)
    return inner.map(lambda mid: [Permute((0, 2, 3, 1)), *mid, Permute((0, 3, 1, 2))])


def _tokens(c: int):
    """A ViT round trip: (H, W) flattened to tokens, per-token layers, the map rebuilt."""
    inner = st.lists(st.sampled_from([LayerNorm(c), Linear(c, c)]), min_size=0, max_size=2)
    return inner.map(lambda mid: ["tokens", *mid])


C = 3
_PIECES = st.one_of(
    st.builds(lambda k, s: [Conv2d(C, C, k, stride=s, padding=k // 2)], st.integers(1, 5), st.integers(1, 2)),
    st.builds(lambda k: [AvgPool2d(k, 1)], st.integers(2, 3)),
    _channels_last(C),
    _tokens(C),
    st.just([Mean(1, True), Conv2d(1, C, 1)]),
    st.just(["along_w"]),  # a Linear (or a softmax) along W of an (N, C, H, W) map
    st.just([Softmax(3)]),
)


def _build(pieces, shape):
    """The chain, with the layers that need the sizes at their place (tokens back to a map,
    a Linear along W) filled in; ``None`` where the chain does not fit."""
    layers: list = []
    for piece in pieces:
        for item in piece:
            try:
                now = analyze_graph(Sequential(*layers).to_graph(), shape).output_shape if layers else shape
            except LayerError:
                return None
            if item == "tokens":
                layers += [Flatten(2), Transpose(1, 2)]
                back = [Transpose(1, 2), Reshape((0, C, now[2], now[3]))]
            elif item == "along_w":
                layers.append(Linear(now[3], now[3]))
            else:
                layers.append(item)
        if piece and piece[0] == "tokens":
            layers += back
    layers.append(Conv2d(C, C, 1))  # channels mixed at the end: no sum over them cancels
    try:
        return layers, analyze_graph(Sequential(*layers).to_graph(), shape)
    except LayerError:
        return None


@settings(max_examples=30, deadline=None)
@given(pieces=st.lists(_PIECES, min_size=1, max_size=4), n=st.integers(9, 16))
def test_chains_with_channels_last_blocks_read_what_autograd_reaches(pieces, n):
    _check_chain_against_autograd(pieces, n)


#: TensorFlow 'SAME' windows (timm's Conv2dSame, AvgPool2dSame): the padding depends on each
#: axis's size, odd totals put the extra pixel after the input, and H and W (n, n + 1) differ.
_TF_SAME_PIECES = st.one_of(
    st.builds(lambda k, s, d: [Conv2d(C, C, k, stride=s, padding="tf_same", dilation=d)],
              st.integers(1, 5), st.integers(1, 3), st.integers(1, 2)),
    st.builds(lambda k, s: [AvgPool2d(k, s, padding="tf_same")], st.integers(1, 3), st.integers(1, 3)),
    _channels_last(C),
)


@settings(max_examples=30, deadline=None)
@given(pieces=st.lists(_TF_SAME_PIECES, min_size=1, max_size=4), n=st.integers(5, 16))
def test_tf_same_chains_read_what_autograd_reaches(pieces, n):
    _check_chain_against_autograd(pieces, n)


def _check_chain_against_autograd(pieces, n):
    shape = (1, C, n, n + 1)
    built = _build(pieces, shape)
    assume(built is not None)
    layers, result = built
    rf = result.records[-1].rf
    inside = fields_in_image(result)[result.records[-1].name]
    out = result.output_shape
    assert not isinstance(rf, Placed)  # back in (N, C, H, W): in the usual place
    spans = _gradient_spans(layers, shape)
    for i in range(out[2]):
        for j in range(out[3]):
            reached = spans(i, j)
            if rf is FieldRule.UNKNOWN:
                continue  # no claim to check
            if rf is None:  # global: the whole image
                assert inside is None and reached == ((0, n - 1), (0, n))
                continue
            assert (inside[0][i], inside[1][j]) == (reached or (None, None)), (i, j)
            if reached is not None:
                for (lo, hi), axis_rf, o in zip(reached, rf, (i, j)):
                    claimed = axis_rf.bounds(o)
                    assert claimed[0] <= lo and hi <= claimed[1], (i, j)


def test_channels_last_and_tokens_are_known_where_they_were_unknown():
    """A ConvNeXt block and a token round trip keep the conv's field, not '?' or 'global'."""
    block = [Conv2d(C, C, 7, padding=3), Permute((0, 2, 3, 1)), LayerNorm(C), Linear(C, 4 * C),
             GELU(), Linear(4 * C, C), Permute((0, 3, 1, 2))]
    result = analyze_graph(Sequential(*block).to_graph(), (1, C, 16, 16))
    assert [[a.size for a in r.rf] for r in result.records] == [[7, 7]] * len(block)
    layers, result = _build([[Conv2d(C, C, 3, padding=1)], ["tokens", LayerNorm(C)]], (1, C, 8, 8))
    assert [a.size for a in result.records[-1].rf] == [3, 3]
    assert isinstance(next(r.rf for r in result.records if r.name == "2"), Placed)  # tokens: (N, L, C)


# ------------------------------------------------------------------ real ConvNeXts
@pytest.mark.parametrize("source", ["torchvision", "timm"])
def test_convnext_fields_equal_autograd(source):
    """ConvNeXt-T runs every block channels-last (permute, LayerNorm, two Linears, permute
    back): the field after stage 1 and at the last stage is known, and what each output pixel
    reads inside a 96×96 image is exactly what its gradient reaches."""
    import shapecalc

    if source == "timm":
        timm = pytest.importorskip("timm")
        model = timm.create_model("convnext_tiny")
        stages = [("stages.0", lambda x: model.stages[0](model.stem(x))),
                  ("stages.3", lambda x: model.stages(model.stem(x)))]
    else:
        tvm = pytest.importorskip("torchvision.models")
        model = tvm.convnext_tiny()
        stages = [("features.1", lambda x: model.features[:2](x)),
                  ("features.7", lambda x: model.features(x))]
    model = model.eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():  # layer scales start at 1e-6: make every path count
            p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    shape = (1, 3, 96, 96)
    analysis = shapecalc.analyze(model, shape)
    inside = fields_in_image(analysis)
    for prefix, run in stages:
        record = [r for r in analysis.records if r.name.startswith(prefix) and len(r.output_shape) == 4][-1]
        assert isinstance(record.rf, tuple) and not isinstance(record.rf, Placed), record.name
        rows, cols = inside[record.name]
        x = torch.randn(shape, generator=generator, requires_grad=True)
        y = run(x)
        assert tuple(y.shape) == record.output_shape
        h, w = record.output_shape[2:]
        for i, j in {(0, 0), (h // 2, w // 2), (h - 1, w - 1)}:
            x.grad = None
            y[0, :, i, j].sum().backward(retain_graph=True)
            hit = (x.grad[0].abs().sum(0) != 0).nonzero()
            reached = ((int(hit[:, 0].min()), int(hit[:, 0].max())),
                       (int(hit[:, 1].min()), int(hit[:, 1].max())))
            assert (rows[i], cols[j]) == reached, (record.name, i, j)
            for (lo, hi), axis_rf, o in zip(reached, record.rf, (i, j)):
                claimed = axis_rf.bounds(o)
                assert claimed[0] <= lo and hi <= claimed[1]
    stage1 = [r for r in analysis.records if r.name.startswith(stages[0][0])][-1]
    assert [a.size for a in stage1.rf] == [4 + 3 * 6 * 4] * 2  # the stem's 4, three 7×7 at jump 4


class _RecordedBlock(torch.nn.Module):
    """A ConvNeXt block fx cannot trace (a branch on a value): recorded with hooks, its
    permutes, the layer scale's ``mul`` and the ``view`` back are measured torch calls."""

    def __init__(self, c: int = 8):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, c, 3, padding=1)
        self.dw = torch.nn.Conv2d(c, c, 5, padding=2, groups=c)
        self.norm = torch.nn.LayerNorm(c)
        self.up = torch.nn.Linear(c, 2 * c)
        self.act = torch.nn.GELU()
        self.down = torch.nn.Linear(2 * c, c)
        self.gamma = torch.nn.Parameter(torch.full((c,), 0.5))
        self.head = torch.nn.Conv2d(c, c, 3)

    def forward(self, x):
        x = self.conv(x)
        if x.sum() > -1e30:  # fx cannot trace a branch on a value
            y = self.dw(x).permute(0, 2, 3, 1)
            y = self.down(self.act(self.up(self.norm(y))))
            b, h, w, c = y.shape
            y = (y * self.gamma).reshape(b, h * w, c).view(b, h, w, c).permute(0, 3, 1, 2)
            x = x + y
        return self.head(x)


def test_a_recorded_channels_last_block_keeps_its_field():
    """Measured permutes (axes of distinct sizes), reshapes and element-wise ops carry the
    field: 3 + 4 + 2 = 9 pixels, as autograd reaches at the centre; the head conv adds 2."""
    import shapecalc

    model = _RecordedBlock().eval()
    shape = (1, 3, 14, 15)
    analysis = shapecalc.analyze(model, shape)
    assert analysis.notes and analysis.notes[0].kind.value == "hook_fallback"
    last = analysis.records[-1]
    assert [a.size for a in last.rf] == [9, 9]
    rows, cols = fields_in_image(analysis)[last.name]
    x = torch.randn(shape, requires_grad=True)
    y = model(x)
    for i, j in [(0, 0), (5, 6), (11, 12)]:
        x.grad = None
        y[0, :, i, j].sum().backward(retain_graph=True)
        hit = (x.grad[0].abs().sum(0) != 0).nonzero()
        reached = ((int(hit[:, 0].min()), int(hit[:, 0].max())), (int(hit[:, 1].min()), int(hit[:, 1].max())))
        assert (rows[i], cols[j]) == reached
        assert all(a.bounds(o)[0] <= lo and hi <= a.bounds(o)[1] for (lo, hi), a, o in zip(reached, last.rf, (i, j)))


def test_sizes_lent_by_another_tensor_and_a_squeeze_after_an_unknown_field():
    """``x.reshape(B, N, -1)`` with B, N read from another tensor's shape has that tensor as an
    input for its sizes only: the field is x's. An unknown field stays unknown through a mean
    over (H, W) (the batch axis may hold windows) and a LayerNorm over a token's channels."""
    from shapecalc.core.arithmetic import AxisRF
    from shapecalc.core.layers.base import merge_fields, next_field

    field = (AxisRF.uniform(3, 1, -1), AxisRF.uniform(3, 1, -1))
    lent = merge_fields([field, None], Reshaped((1, 4, 5, 6), (1, 4, 30)))
    assert isinstance(lent, Placed) and [a.size for a in lent] == [3, 3]
    squeeze = Mean((2, 3), keepdim=True).field_steps((1, 4, 5, 6))
    assert next_field(FieldRule.UNKNOWN, squeeze) is FieldRule.UNKNOWN
    assert next_field(FieldRule.UNKNOWN, LayerNorm(8).field_steps((1, 30, 8))) is FieldRule.UNKNOWN


class _Pooled(torch.nn.Module):
    """A conv over an 8×8 image, then a mean over (H, W): of the whole map, of 4×4 windows
    folded into the batch axis (Swin's partition), or through a squeeze-excite gate."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        fmap = self.conv(x)  # (1, 4, 8, 8)
        if self.how == "adaptive":
            return self.pool(fmap)
        if self.how.startswith("windows"):
            fmap = fmap.reshape(1, 4, 2, 4, 2, 4).permute(0, 2, 4, 1, 3, 5).reshape(4, 4, 4, 4)
        pooled = fmap.mean((2, 3), keepdim=True)
        return fmap * pooled.sigmoid() if self.how.endswith("gate") else pooled


@pytest.mark.parametrize("how, global_, pixels", [
    ("map", True, 64), ("adaptive", True, 64), ("gate", True, 64),
    ("windows", False, 25),  # window 0's mean reads its 4×4 conv outputs' 5×5 pixels of 64
    ("windows gate", False, 25),  # its pixel (0, 0) gated by that mean: the same 5×5
])
def test_a_mean_over_the_map_is_global_only_where_its_axes_hold_the_image(how, global_, pixels):
    """Global only where the field axes say the mixed axes hold the whole image's positions;
    a field the windows' reshape split is unknown, and stays so through the mean."""
    import shapecalc

    model = _Pooled(how).eval()
    result = shapecalc.analyze(model, (1, 3, 8, 8))
    last = result.records[-1]
    inside = fields_in_image(result)[last.name]
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    out = model(x)[0, :, 0, 0]
    (out * torch.randn(out.shape)).sum().backward()
    assert int((x.grad[0].abs().sum(0) != 0).sum()) == pixels
    if global_:  # the image's every pixel: said outright, or as the field of each axis
        assert inside is None or inside == (((0, 7),), ((0, 7),))
        assert last.rf is None or all(a.bounds(0) == (-1, 8) for a in last.rf)
    else:
        assert last.rf is FieldRule.UNKNOWN and inside is FieldRule.UNKNOWN
