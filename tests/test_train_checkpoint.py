"""Checkpoints and run folders under attack: data is never code, bad files are one line, nothing
the user had is damaged (disk full, a second Ctrl-C), and a finished run loads back as a module.

Runs are tiny (3 steps of 64 images at 65×65, synthetic data), so each takes seconds on the CPU.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import signal
import textwrap

import pytest

torch = pytest.importorskip("torch")

import shapecalc  # noqa: E402
from shapecalc.core.errors import UsageError  # noqa: E402
from shapecalc.core.fileio import OutputError  # noqa: E402
from shapecalc.train import TrainError  # noqa: E402
from shapecalc.train import checkpoint as ckpt  # noqa: E402
from shapecalc.train.loop import Interrupted, train  # noqa: E402
from shapecalc.train.model import resolve, stored_model  # noqa: E402
from shapecalc.train.report import Reporter  # noqa: E402
from conftest import quiet_reporter, tiny_config  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished 1-epoch run: its folder and its result."""
    out = tmp_path_factory.mktemp("run") / "alexnet"
    return out, train(tiny_config(out, epochs=1), reporter=quiet_reporter())


def copy_run(run_dir, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(run_dir, target)
    return target


def tamper(path, change, redigest: bool = True) -> None:
    """Change a saved file; like a forger who knows the format, recompute the weights' digest
    (unless ``redigest`` is False), so that each check below is reached on its own."""
    from shapecalc.train.checkpoint import DIGEST, weights_digest

    state = torch.load(path, weights_only=True)
    change(state)
    weights = state.get("weights")
    if redigest and isinstance(weights, dict) and all(isinstance(v, torch.Tensor) for v in weights.values()):
        state[DIGEST] = weights_digest(weights)
    torch.save(state, path)


# -- data is never code ---------------------------------------------------------------------
def test_resume_rebuilds_from_the_stored_spec_and_never_runs_a_named_callable(run_dir, tmp_path,
                                                                             monkeypatch, cli):
    out, _ = run_dir
    run = copy_run(out, tmp_path)
    marker = tmp_path / "pwned"
    evil = f"os:system('touch {marker}')"

    def poison(state):
        state["config"]["model"] = evil
        state["model"]["given_as"] = evil

    tamper(run / "checkpoint.pt", poison)
    import shapecalc.models.api
    import shapecalc.models.sources

    def no_resolving(*_a, **_k):
        raise AssertionError("a MODEL string from the checkpoint was resolved")

    for module in (shapecalc.models.api, shapecalc.models.sources):
        monkeypatch.setattr(module, "resolve", no_resolving)
    code, printed, err = cli("train", "--resume", str(run / "checkpoint.pt"), "--epochs", "2")
    assert code == 0, err
    assert "resumed at epoch 2, batch 0" in printed and not marker.exists()


def test_a_python_model_without_a_spec_needs_model_again_to_resume(tmp_path, cli, monkeypatch):
    (tmp_path / "net.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Net(nn.Module):
            input_shape = (1, 1, 28, 28)

            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(1, 4, 3, padding=1)
                self.fc = nn.Linear(4 * 28 * 28, 10)

            def forward(self, x):
                return self.fc(torch.relu(self.conv(x)).flatten(1))
    """))
    monkeypatch.chdir(tmp_path)
    base = ["--synthetic", "--device", "cpu", "--epochs", "1", "--batch-size", "32",
            "--limit-train", "64", "--limit-test", "32", "--threads", "2"]
    code, printed, err = cli("train", *(base + ["--model", "net.py:Net", "--out", "run"]))
    assert code == 0, err
    assert printed.startswith("shapecalc train: Net at 28x28 on cpu")  # the model's own size
    code, _printed, err = cli("train", "--resume", "run/checkpoint.pt", "--epochs", "2")
    assert code == 1 and err.count("\n") == 1
    assert "has no spec form; pass --model net.py:Net again to resume it (that runs its code)" in err
    code, printed, err = cli("train", "--resume", "run/checkpoint.pt", "--epochs", "2",
                             "--model", "net.py:Net")
    assert code == 0, err
    assert "resumed at epoch 2, batch 0" in printed
    with pytest.raises(TrainError, match=r"pass model='net.py:Net' to load_trained"):
        shapecalc.load_trained("run")
    module = shapecalc.load_trained("run", model="net.py:Net")
    assert tuple(module(torch.zeros(2, 1, 28, 28)).shape) == (2, 10)


def test_a_sequential_python_model_is_stored_as_a_spec(tmp_path, monkeypatch):
    (tmp_path / "chain.py").write_text(
        "from torch import nn\n"
        "def make():\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))\n")
    monkeypatch.chdir(tmp_path)
    stored = stored_model(resolve("chain.py:make"), "chain.py:make")
    assert stored["zoo"] is None and stored["spec"]["layers"][1]["type"] == "Linear"


# -- malformed but loadable checkpoints: one line each ----------------------------------------
def _conv_weight_wrong(state):
    state["weights"]["0.weight"] = torch.zeros(3, 3)


MALFORMED = [
    (lambda s: s.pop("weights"), "has no 'weights' entry"),
    (lambda s: s.update(weights="oops"), "entry 'weights' should be the model's weights"),
    (lambda s: s["weights"].pop("0.bias"), "do not fit the model (missing 0.bias)"),
    (_conv_weight_wrong, "weight '0.weight' is 3x3 in the file"),
    (lambda s: s.update(epoch="1"), "entry 'epoch' should be a count"),
    (lambda s: s.update(epoch=-1), "entry 'epoch' should be ≥ 0"),
    (lambda s: s.update(batch=99), "entry 'batch' is 99, but an epoch has 3 batches"),
    (lambda s: s.update(data_rng=torch.zeros(3)), "entry 'data_rng' should be a uint8 RNG state"),
    (lambda s: s.update(history=[{"epoch": 1}]), "entry 'history[0]' should hold the numbers"),
    (lambda s: s.update(optimizer={}), "entry 'optimizer' should hold 'state' and 'param_groups'"),
    (lambda s: s["config"].update(epochs="two"), "stored setting 'epochs' should be int"),
    (lambda s: s["config"].update(shell="rm -rf /"), "unknown setting 'shell'"),
    (lambda s: s["model"].update(spec={"layers": "bad"}), "model spec"),
    (lambda s: s.update(format="shapecalc-train/1"), "written by another shapecalc version"),
    (lambda s: s.update(format=7), "not a shapecalc training checkpoint"),
    # forged values are checked like the flags they stand for (issue 21)
    (lambda s: s["optimizer"]["param_groups"][0].update(lr=-10.0), "param_groups[0].lr"),
    (lambda s: s["optimizer"]["param_groups"][0].update(lr=float("nan")), "param_groups[0].lr"),
    (lambda s: s["config"].update(lr="x"), "stored setting 'lr' should be"),
    (lambda s: s["config"].update(seed=2**70), "--seed"),
    (lambda s: s["config"].update(threads=2**62), "--threads"),
    (lambda s: s["config"].update(threads=1_000_000), "--threads"),
    (lambda s: s["config"].update(image_size=2**40), "--image-size"),
    (lambda s: s["history"][0].update(loss=float("nan")), "entry 'history[0].loss'"),
    (lambda s: s["history"][0].update(test_acc=float("inf")), "entry 'history[0].test_acc'"),
    (lambda s: s.update(batch=1, partial={"loss_sum": float("nan"), "correct": 0, "seen": 1,
                                          "seconds": 1.0}), "entry 'partial.loss_sum'"),
    (lambda s: s.update(batch=1, partial={"loss_sum": 1.0, "correct": -1, "seen": 1,
                                          "seconds": 1.0}), "entry 'partial.correct'"),
    (lambda s: s.update(batch=1, partial={"loss_sum": 1.0, "correct": 0, "seen": 1,
                                          "seconds": float("inf")}), "entry 'partial.seconds'"),
]


@pytest.mark.parametrize("change, message", MALFORMED)
def test_malformed_checkpoints_are_one_line(run_dir, tmp_path, cli, change, message):
    out, _ = run_dir
    run = copy_run(out, tmp_path)
    tamper(run / "checkpoint.pt", change)
    code, _printed, err = cli("train", "--resume", str(run / "checkpoint.pt"), "--epochs", "2")
    assert code in (1, 2) and err.count("\n") == 1 and err.startswith("shapecalc: error: "), err
    assert message in err and "--resume" in err, err


def test_a_flipped_byte_in_the_weights_is_refused(run_dir, tmp_path, cli):
    out, _ = run_dir
    run = copy_run(out, tmp_path)

    def flip(state):
        weight = state["weights"]["0.weight"]
        weight.view(-1).view(torch.uint8)[5] ^= 0x10

    tamper(run / "checkpoint.pt", flip, redigest=False)
    code, _printed, err = cli("train", "--resume", str(run / "checkpoint.pt"), "--epochs", "2")
    assert code == 1 and err.count("\n") == 1, err
    assert "do not match the digest" in err


def test_a_checkpoint_zip_bomb_is_refused_before_loading(tmp_path):
    import zipfile

    from shapecalc.train.checkpoint import load

    bomb = tmp_path / "checkpoint.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\0" * (64 * 2**20))  # 64 MiB in ~64 KB
    assert bomb.stat().st_size < 2**20
    with pytest.raises(TrainError, match="unpacks to more than the file holds"):
        load(bomb)


# -- outputs that cannot be damaged ---------------------------------------------------------
def test_unwritable_out_fails_before_training(tmp_path, cli):
    (tmp_path / "file").write_text("x")
    code, printed, err = cli("train", "--synthetic", "--device", "cpu", "--image-size", "65",
                              "--out", str(tmp_path / "file" / "run"))
    assert code == 2 and err.count("\n") == 1 and "--out" in err, err
    assert "shape check" not in printed and "epoch" not in printed


def test_disk_full_leaves_no_temporary_and_is_one_line(tmp_path, monkeypatch):
    real_save = torch.save

    def full_disk(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OutputError, match="no space left on the device"):
        train(tiny_config(tmp_path / "run", epochs=1), reporter=quiet_reporter())
    monkeypatch.setattr(torch, "save", real_save)
    # No temporary, no half checkpoint: the run's folder held nothing, so it is gone too.
    assert not (tmp_path / "run").exists()


def test_torch_save_failing_on_a_full_disk_is_one_line_and_exit_1(tmp_path, monkeypatch, cli):
    # torch.save reports a failed write as a RuntimeError, not an OSError (issue 21)
    def full_disk(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed "
                           "writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", full_disk)
    code, _printed, err = cli("train", "--synthetic", "--device", "cpu", "--image-size", "65",
                               "--limit-train", "64", "--limit-test", "64", "--batch-size", "64",
                               "--epochs", "1", "--threads", "2", "--out", str(tmp_path / "run"))
    assert code == 1 and err.count("\n") == 1, err
    assert "--out: cannot write" in err and "torch.save failed" in err
    assert not (tmp_path / "run").exists()  # nothing was written: no temporary, no empty folder


def test_a_resume_whose_checkpoint_is_a_symlink_fails_before_training(run_dir, tmp_path, cli):
    out, _ = run_dir
    run = copy_run(out, tmp_path)
    real = tmp_path / "elsewhere.pt"
    (run / "checkpoint.pt").rename(real)
    (run / "checkpoint.pt").symlink_to(real)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and not p.is_symlink()}
    code, printed, err = cli("train", "--resume", str(run / "checkpoint.pt"), "--epochs", "3")
    assert code == 2 and err.count("\n") == 1 and "symbolic link" in err, err
    assert "epoch" not in printed
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and not p.is_symlink()}
    assert after == before and (run / "checkpoint.pt").is_symlink()


class _CtrlC(Reporter):
    """Sends real SIGINTs (``times`` of them) once ``steps`` batches of epoch ``epoch`` are done."""

    def __init__(self, epoch: int, steps: int, times: int = 1) -> None:
        super().__init__(io.StringIO())
        self.at, self.steps, self.times = epoch, steps, times

    def epoch_start(self, epoch, epochs, batches, done=0):
        super().epoch_start(epoch, epochs, batches, done)
        self.current = epoch

    def step(self, p):
        if self.current == self.at and p.done == self.steps:
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)


def test_second_ctrl_c_during_the_save_finishes_it(tmp_path, monkeypatch, sigint_as_in_a_terminal):
    real_save = ckpt.save

    def interrupted_save(path, state, fmt=ckpt.FORMAT):
        os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C again mid-write
        real_save(path, state, fmt)

    monkeypatch.setattr(ckpt, "save", interrupted_save)
    reporter = _CtrlC(1, 1)
    with pytest.raises(Interrupted, match="interrupted at epoch 1, batch 1; checkpoint written"):
        train(tiny_config(tmp_path, epochs=1), reporter=reporter, sync_every=1)
    assert "second Ctrl-C: finishing the checkpoint being written" in reporter.stream.getvalue()
    state = ckpt.load(tmp_path / "checkpoint.pt")
    assert (state["epoch"], state["batch"]) == (0, 1)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_second_ctrl_c_outside_a_save_keeps_the_last_checkpoint(tmp_path, sigint_as_in_a_terminal):
    with pytest.raises(Interrupted, match=r"stopped by a second Ctrl-C; the last checkpoint "
                                          r"\(after epoch 1\) is kept: --resume"):
        train(tiny_config(tmp_path, epochs=2), reporter=_CtrlC(2, 1, times=2), sync_every=1)
    state = ckpt.load(tmp_path / "checkpoint.pt")
    assert (state["epoch"], state["batch"]) == (1, 0)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- run folders and load_trained -------------------------------------------------------------
def test_without_out_a_run_folder_is_made_and_named(tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    code, printed, err = cli("train", "--synthetic", "--device", "cpu", "--epochs", "1", "--batch-size", "64",
                              "--limit-train", "64", "--limit-test", "32", "--image-size", "65",
                              "--threads", "2")
    assert code == 0, err
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("alexnet-") and folder.name.endswith("Z")
    assert f"saved in runs/{folder.name}/: metrics.json, model.pt, checkpoint.pt" in printed
    module = shapecalc.load_trained(folder)
    assert not module.training and tuple(module(torch.zeros(1, 1, 65, 65)).shape) == (1, 10)
    code, printed, err = cli("train", "--synthetic", "--device", "cpu", "--epochs", "1", "--batch-size", "64",
                              "--limit-train", "64", "--limit-test", "32", "--image-size", "65",
                              "--no-save")
    assert code == 0, err
    assert "not saved (--no-save)" in printed and len(list((tmp_path / "runs").iterdir())) == 1


def test_load_trained_returns_the_trained_weights(run_dir):
    out, result = run_dir
    module = shapecalc.load_trained(out)
    trained = result.model.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in module.state_dict().items())
    with pytest.raises(UsageError, match="no such model file"):
        shapecalc.load_trained(out / "nothing")
