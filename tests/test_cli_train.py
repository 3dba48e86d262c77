"""``shapecalc train`` on the command line: one-line errors, a tiny real run, torch-free help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """A run without --out writes runs/<model>-<time>/ in the working folder: keep it in tmp_path."""
    monkeypatch.chdir(tmp_path)


TINY = ["--synthetic", "--device", "cpu", "--epochs", "1", "--batch-size", "64",
        "--limit-train", "64", "--limit-test", "32", "--image-size", "65", "--threads", "2"]


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs: must be ≥ 1, got 0"),
    (["--batch-size", "-3"], "--batch-size: must be ≥ 1, got -3"),
    (["--image-size", "0"], "--image-size: must be ≥ 1, got 0"),
    (["--limit-train", "0"], "--limit-train: must be ≥ 1, got 0"),
    (["--lr", "-0.1"], "--lr: must be > 0, got -0.1"),
    (["--lr", "inf"], "'--lr': expected a finite number like 0.01 or 1e-3, got 'inf'"),
    (["--lr", "1e308"], "--lr: must be ≤ 1000"),
    (["--seed", "18446744073709551616"], "'--seed': 20 digits is too large"),
    (["--threads", "1" * 30], "'--threads': 30 digits is too large"),
    (["--threads", "1000000"], "--threads: must be ≤ 1,024"),
    (["--image-size", "100000"], "--image-size: must be ≤ 8,192"),
    (["--image-size", "٢٢٤"], "written with the digits 0-9"),
    (["--epochs", "1_000"], "written with the digits 0-9"),
    (["--seed", "-1"], "--seed: must be ≥ 0, got -1"),
    (["--epochs", "two"], "expected an integer written with the digits 0-9, got 'two'"),
    (["--image-size", "64"], "--image-size: alexnet needs at least 65x65"),
    (["--device", "tpu"], "--device: expected auto, cpu, cuda, cuda:N or mps, got 'tpu'"),
    (["--model", "alexnet-2012"], "--model alexnet-2012 cannot take Fashion-MNIST batches of 1x65x65"),
    (["--threads", "0"], "--threads: must be ≥ 1, got 0"),
    (["--no-save", "--out", "x"], "--no-save: cannot be combined with --out"),
    (["--model", "alexnot"], "unknown model 'alexnot' (did you mean 'alexnet'"),
])
def test_bad_options_are_one_line(args, message, cli):
    code, out, err = cli("train", *TINY + args)
    assert code in (1, 2)
    assert err.count("\n") == 1 and err.startswith("shapecalc: error: ") and message in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line(cli):
    code, _out, err = cli("train", *TINY + ["--device", "cuda"])
    assert code == 1 and err.count("\n") == 1 and "--device cuda: CUDA is not available" in err


def test_data_dir_without_data_is_one_line(tmp_path, cli):
    args = [a for a in TINY if a != "--synthetic"] + ["--data-dir", str(tmp_path)]
    code, _out, err = cli("train", *args)
    assert code == 1 and err.count("\n") == 1
    assert f"--data-dir {tmp_path}: missing train-images-idx3-ubyte.gz" in err
    assert not (tmp_path / "runs").exists()  # the failed run takes its empty folder away again


def test_a_failed_run_keeps_what_was_in_out(tmp_path, cli):
    out_dir = tmp_path / "mine"
    out_dir.mkdir()
    (out_dir / "notes.txt").write_text("the user's")
    data_dir = tmp_path / "no-data"
    data_dir.mkdir()
    args = [a for a in TINY if a != "--synthetic"] + ["--data-dir", str(data_dir), "--out", str(out_dir)]
    code, _out, err = cli("train", *args)
    assert code == 1 and "missing train-images-idx3-ubyte.gz" in err
    assert (out_dir / "notes.txt").read_text() == "the user's"
    code, _out, err = cli("train", *args[:-1] + [str(tmp_path / "new" / "run")])
    assert code == 1 and not (tmp_path / "new").exists()


def test_tiny_run_writes_its_outputs_and_refuses_to_overwrite(tmp_path, cli):
    out_dir = tmp_path / "run"
    code, out, err = cli("train", *TINY + ["--out", str(out_dir)])
    assert code == 0, err
    lines = out.splitlines()  # not a terminal: plain lines, no bars
    assert lines[0] == "shapecalc train: alexnet at 65x65 on cpu (amp off, channels-last off, 2 CPU threads)"
    assert lines[2] == "shape check: 21 layers on cpu match the engine's table"
    assert any(line.startswith("epoch 1/1  loss ") and "images/s" in line for line in lines)
    assert json.loads((out_dir / "metrics.json").read_text())["status"] == "complete"
    code, _out, err = cli("train", *TINY + ["--out", str(out_dir)])
    assert code == 2 and "metrics.json from an earlier run is there" in err and err.count("\n") == 1
    checkpoint = str(out_dir / "checkpoint.pt")
    code, _out, err = cli("train", *["--resume", checkpoint, "--lr", "0.5"])
    assert code == 2 and "--lr: the run in" in err and "used 0.01" in err
    code, out, err = cli("train", *["--resume", checkpoint, "--epochs", "2"])
    assert code == 0, err
    assert "resumed at epoch 2, batch 0" in out
    assert len(json.loads((out_dir / "metrics.json").read_text())["epochs"]) == 2


def test_interrupt_exits_130_with_one_line(monkeypatch, cli):
    from shapecalc.train import loop

    def interrupted(*_a, **_k):
        raise loop.Interrupted("interrupted at epoch 1, batch 3; no --out, so no checkpoint was written")

    monkeypatch.setattr(loop, "train", interrupted)
    code, _out, err = cli("train", *TINY)
    assert code == 130 and err == "shapecalc: interrupted at epoch 1, batch 3; no --out, so no checkpoint was written\n"


def test_help_does_not_import_torch():
    code = ("import sys; from shapecalc.cli import main\n"
            "try:\n    main(['train', '--help'])\nexcept SystemExit: pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "--image-size" in out and out.strip().endswith("False")


def test_the_model_is_resolved_once(monkeypatch, tmp_path, cli):
    import shapecalc.models.api
    import shapecalc.models.sources

    calls = []
    real = shapecalc.models.sources.resolve

    def counting(text, **kw):
        calls.append(text)
        return real(text, **kw)

    for module in (shapecalc.models.api, shapecalc.models.sources):
        monkeypatch.setattr(module, "resolve", counting)
    code, _out, err = cli("train", *TINY + ["--out", str(tmp_path / "run")])
    assert code == 0, err
    assert calls == ["alexnet"]


def test_a_model_without_an_input_size_gets_an_image_size_hint(tmp_path, monkeypatch, cli):
    (tmp_path / "mlp.py").write_text(
        "from torch import nn\n"
        "def make():\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))\n")
    monkeypatch.chdir(tmp_path)
    args = [a for a in TINY if a not in ("--image-size", "65")] + ["--model", "mlp.py:make", "--no-save"]
    code, _out, err = cli("train", *args)  # no input_shape: 224, which the Linear cannot take
    assert code == 1 and err.count("\n") == 1, err
    assert "--model make cannot take Fashion-MNIST batches of 1x224x224" in err
    assert err.rstrip().endswith("; try --image-size 28"), err
    code, out, err = cli("train", *args + ["--image-size", "28"])
    assert code == 0, err
    assert out.startswith("shapecalc train: make at 28x28 on cpu")


def test_every_run_setting_is_an_option_of_the_same_name():
    from dataclasses import fields

    from shapecalc.cli.train import train
    from shapecalc.train.config import TrainConfig

    options = {p.name for p in train.params} - {"no_save", "resume"}
    assert options == {f.name for f in fields(TrainConfig)}


def test_stored_settings_are_checked_by_their_declared_type():
    from shapecalc.train.config import TrainConfig
    from shapecalc.train.errors import TrainError

    assert TrainConfig.from_json({"lr": 1, "image_size": None}, "x").lr == 1
    for bad, words in (({"epochs": "3"}, "'epochs' should be int, got str"),
                       ({"lr": True}, "'lr' should be float or int, got bool"),
                       ({"amp": 1}, "'amp' should be bool or null, got int"),
                       ({"seed": None}, "'seed' should be int, got NoneType")):
        with pytest.raises(TrainError, match=words):
            TrainConfig.from_json(bad, "x")
