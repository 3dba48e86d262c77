"""The training loop on the CPU: it learns, resumes bit-for-bit, survives Ctrl-C, stops on NaN.

Mechanics (resume, interrupt, NaN, outputs) run on synthetic data at AlexNet's smallest input
(65×65) and a few hundred images so they take seconds; the learning test uses the real
Fashion-MNIST subset. Times were measured on 2 shared cores (see the README).
"""

from __future__ import annotations

import io
import json
import os
import signal

import pytest

torch = pytest.importorskip("torch")

from shapecalc.core.errors import UsageError  # noqa: E402
from shapecalc.train import TrainError  # noqa: E402
from shapecalc.train import checkpoint as ckpt  # noqa: E402
from shapecalc.train.config import TrainConfig, resolve_device  # noqa: E402
from shapecalc.train.loop import Interrupted, train  # noqa: E402
from shapecalc.train.model import build, check_shapes  # noqa: E402
from shapecalc.train.pipeline import (  # noqa: E402
    MEAN, STD, DeviceSplit, epoch_order, eval_batches, to_inputs, train_batches,
)
from shapecalc.train.report import Reporter  # noqa: E402
from conftest import quiet_reporter as quiet, tiny_config as tiny  # noqa: E402


@pytest.fixture(autouse=True)
def _threads():
    """Runs here set their thread count (tiny(threads=2)); this only restores the caller's."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- pipeline -----------------------------------------------------------------------------
def test_to_inputs_resizes_and_standardises():
    images = torch.full((3, 28, 28), 255, dtype=torch.uint8)
    x = to_inputs(images, 96)
    assert tuple(x.shape) == (3, 1, 96, 96) and x.dtype == torch.float32
    assert torch.allclose(x, torch.full_like(x, (1 - MEAN) / STD))
    assert tuple(to_inputs(images, 28).shape) == (3, 1, 28, 28)


def test_shuffle_is_seeded_and_ddp_shards_partition_each_batch():
    a = epoch_order(100, torch.Generator().manual_seed(3))
    b = epoch_order(100, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and sorted(a.tolist()) == list(range(100))
    shards = [epoch_order(101, torch.Generator().manual_seed(3), r, 2) for r in range(2)]
    single = epoch_order(101, torch.Generator().manual_seed(3))[:100]  # trimmed to 2 x 50
    assert len(shards[0]) == len(shards[1]) == 50
    for i in range(0, 50, 8):  # rank batches of 8 together = the single-process batch of 16
        union = set(shards[0][i:i + 8].tolist()) | set(shards[1][i:i + 8].tolist())
        assert union == set(single[2 * i:2 * i + 16].tolist())


def test_train_batches_resume_mid_epoch():
    split = DeviceSplit(torch.arange(10 * 784, dtype=torch.int64).remainder(256).to(torch.uint8)
                        .reshape(10, 28, 28), torch.arange(10) % 10)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    full = [y.tolist() for _, y in train_batches(split, order, 4, 28)]
    assert full == [order[:4].tolist(), order[4:8].tolist()]  # the partial last batch is dropped
    assert [y.tolist() for _, y in train_batches(split, order, 4, 28, start=1)] == full[1:]
    assert [y.tolist() for _, y in train_batches(split, order, 16, 28)] == [order.tolist()]  # < 1 batch


def test_eval_batches_pad_to_one_shape_and_count_only_real_rows():
    split = DeviceSplit(torch.zeros(10, 28, 28, dtype=torch.uint8), torch.arange(10))
    plain = [(tuple(x.shape), y.tolist(), n) for x, y, n in eval_batches(split, 4, 28)]
    assert [p[2] for p in plain] == [4, 4, 2] and plain[-1][0][0] == 2
    padded = [(x.shape[0], y[:n].tolist(), n) for x, y, n in eval_batches(split, 4, 28, pad=True)]
    assert [p[0] for p in padded] == [4, 4, 4] and padded[-1][1:] == ([8, 9], 2)


# -- model --------------------------------------------------------------------------------
def test_shape_check_passes_and_reports_a_mismatch():
    module = build("alexnet", 65, seed=0)
    assert check_shapes("alexnet", module, 65, torch.device("cpu")) == 21
    module[20] = torch.nn.Linear(4096, 11)  # torch runs it; the engine's table says 10 classes
    with pytest.raises(TrainError, match=r"shape check failed before training: 20 \(Linear\): engine 2x10, torch 2x11"):
        check_shapes("alexnet", module, 65, torch.device("cpu"))
    module[0] = torch.nn.Conv2d(1, 96, 11, stride=4, padding=20)  # Linear(256, .) then refuses 1024
    with pytest.raises(TrainError, match="shape check failed before training: torch's forward"):
        check_shapes("alexnet", module, 65, torch.device("cpu"))


def test_xavier_init_and_derived_classifier():
    module = build("alexnet", 128, seed=0)
    assert module[14].in_features == 1024  # 256 x 2 x 2 at 128; 256 x 1 x 1 at 65..127; 6400 at 224
    assert all(float(m.bias.detach().abs().sum()) == 0 for m in module.modules() if hasattr(m, "bias") and m.bias is not None)
    bound = (6 / (1024 + 4096)) ** 0.5
    assert float(module[14].weight.detach().abs().max()) <= bound


def test_below_minimum_fails_before_any_work():
    with pytest.raises(UsageError, match="--image-size: alexnet needs at least 65x65 .* got 64"):
        train(tiny(image_size=64), reporter=quiet())


def test_validation_and_devices():
    with pytest.raises(UsageError, match="--epochs: must be ≥ 1, got 0"):
        tiny(epochs=0).validate()
    with pytest.raises(UsageError, match="--lr: expected a finite number"):
        tiny(lr=float("nan")).validate()
    assert resolve_device("auto").type in ("cuda", "mps", "cpu")
    with pytest.raises(UsageError, match="--device: expected auto, cpu, cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(TrainError, match="--device cuda: CUDA is not available"):
            resolve_device("cuda")


# -- runs ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The reference: 2 epochs without a break."""
    out = tmp_path_factory.mktemp("straight")
    result = train(tiny(out), reporter=quiet())
    return out, result


def test_outputs_of_a_run(straight):
    out, result = straight
    assert sorted(p.name for p in out.iterdir()) == sorted(ckpt.OUTPUTS)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "complete" and len(metrics["epochs"]) == 2
    assert metrics["environment"]["torch"] == torch.__version__ and metrics["config"]["lr"] == 0.01
    assert metrics["summary"]["final_test_acc"] == result.history[-1].test_acc
    # training wall time (what gpu_validate.sh holds to its target): epochs and evaluations
    assert metrics["wall_seconds"] >= sum(e["seconds"] + e["eval_seconds"] for e in metrics["epochs"]) * 0.99
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = torch.load(out / "model.pt", weights_only=True)
    assert saved["format"] == "shapecalc-model/2" and saved["image_size"] == 65
    assert saved[ckpt.DIGEST] == ckpt.weights_digest(saved["weights"])
    assert saved["model"]["zoo"] == "alexnet" and saved["model"]["spec"]["name"] == "alexnet"
    assert same_weights(saved["weights"], result.model.state_dict())


def test_resume_is_bit_for_bit(straight, tmp_path):
    """Even when the resuming process has another thread count: the run's own is restored."""
    ref_out, ref = straight
    train(tiny(tmp_path, epochs=1), reporter=quiet())
    torch.set_num_threads(1)  # 2 in the run: the last bits of a conv sum differ between the two
    resumed = train(tiny(epochs=2), resume_path=str(tmp_path / "checkpoint.pt"), reporter=quiet())
    assert torch.get_num_threads() == 1  # the caller's setting is given back
    assert [m.to_json() | {"seconds": 0, "eval_seconds": 0, "images_per_s": 0} for m in resumed.history] == \
           [m.to_json() | {"seconds": 0, "eval_seconds": 0, "images_per_s": 0} for m in ref.history]
    assert same_weights(resumed.model.state_dict(), ref.model.state_dict())


class _CtrlCAfter(Reporter):
    """Sends the process a real SIGINT once ``steps`` batches of epoch ``epoch`` are done."""

    def __init__(self, epoch: int, steps: int) -> None:
        super().__init__(io.StringIO())
        self.at, self.steps = epoch, steps

    def epoch_start(self, epoch, epochs, batches, done=0):
        super().epoch_start(epoch, epochs, batches, done)
        self.current = epoch

    def step(self, p):
        if self.current == self.at and p.done == self.steps:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_checkpoints_mid_epoch_and_resumes_exactly(straight, tmp_path, sigint_as_in_a_terminal):
    _ref_out, ref = straight
    with pytest.raises(Interrupted, match=r"interrupted at epoch 2, batch 1; checkpoint written, continue with --resume"):
        train(tiny(tmp_path), reporter=_CtrlCAfter(2, 1), sync_every=1)
    state = ckpt.load(tmp_path / "checkpoint.pt")
    assert (state["epoch"], state["batch"]) == (1, 1) and state["partial"]["seen"] == 64
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "interrupted"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    resumed = train(tiny(epochs=2), resume_path=str(tmp_path / "checkpoint.pt"), reporter=quiet())
    strip = {"seconds": 0, "eval_seconds": 0, "images_per_s": 0}
    assert [m.to_json() | strip for m in resumed.history] == [m.to_json() | strip for m in ref.history]
    assert same_weights(resumed.model.state_dict(), ref.model.state_dict())


def test_earlier_run_is_never_overwritten(straight):
    out, _ = straight
    before = (out / "metrics.json").read_bytes()
    with pytest.raises(UsageError, match=r"metrics.json from an earlier run is there; .*--force"):
        train(tiny(out), reporter=quiet())
    assert (out / "metrics.json").read_bytes() == before


def test_nan_loss_names_the_step_and_suggests_a_lower_lr():
    with pytest.raises(TrainError, match=r"loss became (nan|inf) at step \d+ \(epoch 1, batch \d+\); --lr 1000 is too high"):
        train(tiny(epochs=1, lr=1e3), reporter=quiet(), sync_every=1)


def test_bad_checkpoint_is_refused(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(TrainError, match="not a readable checkpoint"):
        ckpt.load(bad)
    with pytest.raises(UsageError, match="no such checkpoint file"):
        ckpt.load(tmp_path / "nope.pt")


# -- learning on the real data -------------------------------------------------------------
def test_alexnet_learns_fashion_mnist_subset(fashion_mnist_dir):
    """2,000 training images at 96×96 (≥ AlexNet's minimum 65), 2 epochs: far above 10% chance."""
    config = TrainConfig(device="cpu", epochs=2, batch_size=32, lr=0.05, image_size=96,
                         limit_train=2000, limit_test=500, data_dir=str(fashion_mnist_dir))
    result = train(config, reporter=quiet())
    assert result.history[-1].test_acc >= 0.30, result.history  # measured 0.428 (README)
    assert result.history[-1].loss < result.history[0].loss


def test_warm_up_changes_nothing():
    """The CUDA warm-up (run here on the CPU) leaves weights, BatchNorm buffers, RNG alone."""
    from shapecalc.train.distributed import World
    from shapecalc.train.run_setup import prepare_run

    run = prepare_run(tiny(model="lenet-bn", image_size=28), World(), quiet())
    before = {k: v.clone() for k, v in run.module.state_dict().items()}
    rng = torch.get_rng_state()
    run.warm_up()
    assert same_weights(before, run.module.state_dict())
    assert torch.equal(rng, torch.get_rng_state()) and run.module.training
    assert all(p.grad is None for p in run.module.parameters())


def test_the_device_policy_decides_once_and_explicit_flags_win():
    from shapecalc.train.config import DevicePolicy, TrainConfig, is_cuda

    cpu = torch.device("cpu")
    policy = DevicePolicy.of(cpu, TrainConfig())
    assert not is_cuda(cpu) and not policy.cuda
    assert (policy.amp, policy.channels_last, policy.warms_up, policy.pad_eval) == (False,) * 4
    assert policy.eval_batch(128) == 128
    chosen = DevicePolicy.of(cpu, TrainConfig(amp=True, channels_last=True))
    assert chosen.amp and chosen.channels_last and not chosen.warms_up
    cuda = DevicePolicy.of(torch.device("cuda", 0), TrainConfig(amp=False))
    assert cuda.cuda and cuda.channels_last and not cuda.amp and cuda.eval_batch(1024) == 2048
