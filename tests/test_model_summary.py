"""``shapecalc.summary``: torchinfo's call and totals, checked against torchinfo itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

import shapecalc
from shapecalc.core.errors import ShapecalcError, UsageError

torch = pytest.importorskip("torch")
torchinfo = pytest.importorskip("torchinfo")
nn = torch.nn


def d2l_alexnet():
    return nn.Sequential(
        nn.Conv2d(1, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2), nn.Flatten(),
        nn.Linear(6400, 4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(4096, 10))


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv, self.bn, self.relu = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x))) + x


def nested_partly_frozen():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Sequential(Block(8), Block(8)),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    net[0].requires_grad_(False)
    net[1][1].bn.requires_grad_(False)
    return net


@pytest.mark.parametrize("make, shape", [(d2l_alexnet, (1, 1, 224, 224)),
                                         (nested_partly_frozen, (2, 3, 32, 32))])
def test_totals_equal_torchinfos(make, shape):
    net = make()
    theirs = torchinfo.summary(net, input_size=shape, verbose=0)
    ours = shapecalc.summary(net, input_size=shape, verbose=0)
    assert ours.total_params == theirs.total_params
    assert ours.trainable_params == theirs.trainable_params
    assert ours.total_mult_adds == theirs.total_mult_adds
    assert ours.output_shape == tuple(theirs.summary_list[0].output_size)


def test_depth_counts_as_torchinfo_and_trainable_column():
    net = nested_partly_frozen()
    ours = shapecalc.summary(net, input_size=(2, 3, 32, 32), depth=2, verbose=0,
                             col_names=["output_size", "num_params", "trainable"])
    theirs = torchinfo.summary(net, input_size=(2, 3, 32, 32), depth=2, verbose=0,
                               col_names=["output_size", "num_params", "trainable"])
    shown = [line for line in str(theirs).splitlines() if "─" in line and ":" in line]
    lines = repr(ours).splitlines()
    ours_rows = lines[3:next(i for i, line in enumerate(lines) if line.startswith("Total params"))]
    assert len(ours_rows) == len(shown) == 7  # both stop at the Blocks (depth 2)
    word = {"True": "yes", "False": "no", "Partial": "partial", "--": "-"}
    assert [word[line.split()[-1]] for line in shown] == [line.split()[-1] for line in ours_rows]
    assert [line.split()[-1] for line in ours_rows] == ["no", "partial", "yes", "partial", "-", "-", "yes"]
    assert "Block (collapsed)" in repr(ours)


def test_input_data_and_dtypes_give_shape_and_element_type():
    net = d2l_alexnet()
    x = torch.zeros(2, 1, 224, 224, dtype=torch.float16)
    by_data = shapecalc.summary(net, input_data=x, verbose=0)
    assert by_data.input_shape == (2, 1, 224, 224) and by_data.dtype == "float16"
    by_size = shapecalc.summary(net, input_size=(2, 1, 224, 224), dtypes=[torch.float16], verbose=0)
    assert by_size.param_bytes == by_data.param_bytes == 2 * 46_764_746


class PairNet(nn.Module):
    """Two images through one shared encoder, concatenated into a head (weights counted once)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                     nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.Flatten())
        self.head = nn.Linear(2 * 16 * 14 * 14, 10)

    def forward(self, left, right):
        return self.head(torch.cat([self.encoder(left), self.encoder(right)], 1))


class ImageText(nn.Module):
    """An image and token ids (int64): a conv branch and an embedding branch, concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 4, stride=4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embed = nn.Embedding(1000, 16)
        self.fc = nn.Linear(32, 5)

    def forward(self, image, tokens):
        txt = self.embed(tokens).mean(1)
        return self.fc(torch.cat([self.pool(self.conv(image)).flatten(1), txt], 1))


def test_two_inputs_by_size_and_by_data_equal_torchinfos():
    net = PairNet()
    net.encoder[0].requires_grad_(False)
    shapes = [(2, 3, 32, 32), (2, 3, 32, 32)]
    theirs = torchinfo.summary(net, input_size=shapes, verbose=0)
    by_size = shapecalc.summary(net, input_size=shapes, verbose=0)
    by_data = shapecalc.summary(net, input_data=[torch.zeros(s) for s in shapes], verbose=0)
    for ours in (by_size, by_data):
        assert ours.total_params == theirs.total_params == 64_154
        assert ours.trainable_params == theirs.trainable_params == 64_154 - 224
        assert ours.total_mult_adds == theirs.total_mult_adds  # the shared encoder: MACs per call
        assert ours.input_shapes == tuple(shapes) and ours.output_shape == (2, 10)
    assert "inputs: left 2×3×32×32, right 2×3×32×32" in repr(by_size)


def test_image_and_tokens_with_dtypes_per_input():
    net = ImageText()
    net.embed.requires_grad_(False)
    shapes = [(1, 3, 224, 224), (1, 77)]
    theirs = torchinfo.summary(net, input_size=shapes, dtypes=[torch.float, torch.long], verbose=0)
    ours = shapecalc.summary(net, input_size=shapes, dtypes=[torch.float, torch.long], verbose=0)
    assert (ours.total_params, ours.trainable_params) == (theirs.total_params, theirs.trainable_params)
    assert ours.trainable_params == 16_949 - 16_000
    # MACs: torchinfo charges an Embedding its whole table once per sample (a Linear on one-hot
    # vectors); shapecalc counts a lookup as 0 (README, "The MACs convention"). Every other
    # layer is counted alike, so the totals differ by exactly torchinfo's Embedding row.
    lookups = [row.macs for row in theirs.summary_list if row.class_name == "Embedding"]
    assert lookups == [1000 * 16]
    assert ours.total_mult_adds == theirs.total_mult_adds - lookups[0] == 2_458_624 + 165
    assert ours.input_dtypes == ("float32", "int64") and ours.dtype == "float32"
    assert "inputs: image 1×3×224×224, tokens 1×77 int64" in repr(ours)
    by_data = shapecalc.summary(net, input_data=[torch.zeros(1, 3, 224, 224),
                                                 torch.zeros(1, 77, dtype=torch.long)], verbose=0)
    assert by_data.input_dtypes == ("float32", "int64") and by_data.total_mult_adds == ours.total_mult_adds
    half = shapecalc.summary(net, input_size=shapes, dtypes=["float16", "int64"], verbose=0)
    assert half.dtype == "float16" and half.param_bytes == 2 * 16_949


@pytest.mark.parametrize("kwargs, words", [
    ({"input_size": (2, 3, 32, 32)}, "input_size: PairNet takes 2 input(s) (left, right), got 1 shape(s)"),
    ({"input_data": [torch.zeros(2, 3, 32, 32)]}, "input_data: PairNet takes 2 input(s)"),
    ({"input_size": [(2, 3, 32, 32)] * 2, "dtypes": [torch.float]}, "dtypes: give one per input (2), got 1"),
    ({"input_size": [(2, 3, 32, 32), (2, 3, 0, 32)]}, "input_size[1][2]: expected a size ≥ 1, got 0"),
    ({"input_size": [(2, 3, 32, 32)] * 2, "dtypes": torch.float}, "dtypes: expected a list"),
])
def test_two_input_mistakes_name_the_parameter(kwargs, words):
    with pytest.raises(ShapecalcError) as err:
        shapecalc.summary(PairNet(), verbose=0, **kwargs)
    assert words in str(err.value) and "\n" not in str(err.value)


class WithAux(nn.Module):
    """A training-only auxiliary head: counted in train mode only."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten())
        self.main = nn.Linear(8 * 6 * 6, 4)
        self.aux = nn.Linear(8 * 6 * 6, 2)

    def forward(self, x):
        feats = self.body(x)
        return (self.main(feats), self.aux(feats)) if self.training else self.main(feats)


def test_mode_is_applied_by_analyze_and_every_flag_restored():
    net = WithAux()
    net.train()
    net.body[1].eval()  # a mixed state, as a fine-tuning loop leaves it
    flags = [m.training for m in net.modules()]
    default = shapecalc.summary(net, input_size=(1, 3, 8, 8), verbose=0)
    assert [m.training for m in net.modules()] == flags
    train = shapecalc.summary(net, input_size=(1, 3, 8, 8), mode="train", verbose=0)
    assert [m.training for m in net.modules()] == flags
    assert (default.mode, train.mode) == ("eval", "train")
    assert train.total_mult_adds - default.total_mult_adds == 8 * 6 * 6 * 2 + 2  # the aux head
    assert default.total_params == train.total_params == sum(p.numel() for p in net.parameters())
    for mode, ours in (("eval", default), ("train", train)):
        theirs = torchinfo.summary(net, input_size=(1, 3, 8, 8), mode=mode, verbose=0)
        assert ours.total_mult_adds == theirs.total_mult_adds, mode


def test_verbose_prints_and_repr_is_the_table(capsys):
    result = shapecalc.summary("alexnet", verbose=1)
    printed = capsys.readouterr().out
    assert printed.rstrip("\n") == repr(result) == result.table().rstrip("\n")
    assert "Total params: 46,764,746" in printed
    shapecalc.summary("alexnet", verbose=2)
    assert "floor((224 − 11 + 2 + 4) / 4) = floor(219 / 4) = 54" in capsys.readouterr().out
    shapecalc.summary("alexnet", verbose=0)
    assert capsys.readouterr().out == ""


def test_in_a_notebook_verbose_defaults_to_quiet(monkeypatch, capsys):
    from shapecalc.output import summary as model_summary

    monkeypatch.setattr(model_summary, "_in_notebook", lambda: True)
    result = shapecalc.summary("alexnet", col_names=("input_size", "output_size"))
    assert capsys.readouterr().out == "" and result.verbose == 0
    html = result._repr_html_()
    assert ">input shape<" in html and ">params<" not in html


@pytest.mark.parametrize("kwargs, words", [
    ({"input_size": (1, 0, 224, 224)}, "input_size[1]"),
    ({"input_size": "224"}, "input_size"),
    ({"input_size": (1, 1, 224, 224), "input_data": torch.zeros(1)}, "not both"),
    ({"input_data": [1, 2]}, "input_data: expected a tensor"),
    ({"dtypes": ["complex64"]}, "dtypes: expected one of float64, float32"),
    ({"mode": "same"}, "mode: choose 'eval' or 'train'"),
    ({"depth": -1}, "depth: expected an integer ≥ 0"),
    ({"verbose": 3}, "verbose: choose 0, 1 or 2"),
    ({"col_names": ["output_size", "flops"]}, "col_names: unknown column 'flops'"),
])
def test_bad_arguments_name_the_parameter(kwargs, words):
    with pytest.raises((ShapecalcError, UsageError)) as err:
        shapecalc.summary(d2l_alexnet(), **{"verbose": 0, **kwargs})
    assert words in str(err.value)


def test_zoo_summary_does_not_import_torch():
    code = ("import sys, shapecalc; r = shapecalc.summary('alexnet', (1, 1, 227, 227), verbose=0); "
            "assert r.total_params == 58_299_082 and 'Linear(9216→4096)' in repr(r); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
