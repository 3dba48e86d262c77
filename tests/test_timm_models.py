"""``timm:NAME[(kwargs)]``: timm's own architectures, counted and shaped as torch has them."""

from __future__ import annotations

import sys

import pytest

timm = pytest.importorskip("timm")
torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from shapecalc import SpecError, analyze, load_model  # noqa: E402
from shapecalc.cli import cli, main  # noqa: E402
from shapecalc.core.extras import MissingDependency  # noqa: E402
from shapecalc.models.timm_models import default_input, registry_name  # noqa: E402


def real_params(name: str, **kwargs) -> int:
    return sum(p.numel() for p in timm.create_model(name, pretrained=False, **kwargs).parameters())


def test_a_registry_name_is_built_by_timm_at_its_own_input_size():
    src = load_model("timm:resnet18")
    assert src.default_input == (1, 3, 224, 224)
    result = analyze(src)
    assert result.total_params == real_params("resnet18")
    assert tuple(result.output_shape) == (1, 1000)


def test_keyword_arguments_reach_create_model_and_set_the_input_size():
    src = load_model("timm:vit_tiny_patch16_224(img_size=64, num_classes=7, in_chans=1)")
    assert src.default_input == (1, 1, 64, 64)
    result = analyze(src)
    assert tuple(result.output_shape) == (1, 7)
    assert result.total_params == real_params("vit_tiny_patch16_224", img_size=64, num_classes=7,
                                              in_chans=1)


def test_the_input_size_comes_from_the_pretrained_tag():
    src = load_model("timm:resnet18.a1_in1k")
    assert src.default_input == (1, 3, *timm.models.get_pretrained_cfg("resnet18.a1_in1k").input_size[1:])


def test_meta_builds_no_weights_and_counts_the_same():
    src = load_model("timm:resnet18", meta=True)
    assert next(src.torch_import.module.parameters()).device.type == "meta"
    assert analyze(src).total_params == real_params("resnet18")
    real = load_model("timm:resnet18", meta=False)
    assert next(real.torch_import.module.parameters()).device.type == "cpu"


def test_a_python_target_in_timm_still_works():
    src = load_model("timm:create_model('resnet18', num_classes=3)")
    assert analyze(src, (1, 3, 64, 64)).output_shape == (1, 3)


@pytest.mark.parametrize("text, words", [
    ("timm:resnet5", "did you mean 'resnet50'"),
    ("timm:resnet18(pretrained=True)", "pretrained= would load weights"),
    ("timm:resnet18(checkpoint_path='w.pth')", "checkpoint_path= would load weights"),
    ("timm:resnet18(num_classes=__import__('os'))", "must be a literal"),
    ("timm:resnet18(3)", "by name"),
    ("timm:resnet18(no_such_argument=1)", "timm.create_model failed"),
])
def test_bad_names_and_arguments_are_one_line(text, words):
    with pytest.raises(SpecError, match=words.replace("(", r"\(").replace(")", r"\)")) as err:
        load_model(text)
    assert "\n" not in str(err.value)


def test_registry_name_tells_python_targets_from_architectures():
    assert registry_name("resnet18(num_classes=10)") == ("resnet18", {"num_classes": 10})
    assert registry_name("create_model('resnet18')") is None


def test_default_input_reads_pretrained_cfg_and_overrides():
    class Fake:
        pretrained_cfg = {"input_size": (3, 288, 288)}

    assert default_input(Fake(), {}) == (1, 3, 288, 288)
    assert default_input(Fake(), {"img_size": (96, 128), "in_chans": 2}) == (1, 2, 96, 128)
    Fake.pretrained_cfg = {}
    assert default_input(Fake(), {}) is None


def test_cli_show_and_unknown_name(capsys):
    shown = CliRunner().invoke(cli, ["show", "timm:resnet18", "--depth", "1"])
    assert shown.exit_code == 0, shown.output
    assert "1×3×224×224" in shown.output and "layer1" in shown.output
    with pytest.raises(SystemExit) as exit_:
        main(["show", "timm:resnet5"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert len(err.strip().splitlines()) == 1 and "did you mean 'resnet50'" in err


def test_without_timm_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now fails
    with pytest.raises(MissingDependency, match=r"needs timm, which is not installed: pip install"):
        load_model("timm:resnet18")
