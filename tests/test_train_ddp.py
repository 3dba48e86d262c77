"""The same command under torchrun: 2 gloo processes on the CPU agree with one process.

Each rank takes every 2nd index of the same seeded permutation and half of each batch, so the
two ranks' batches together are the single process's batch and DDP's averaged gradient is
its gradient. Only dropout masks differ (each rank draws its own), hence a tolerance.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from shapecalc.train.config import TrainConfig  # noqa: E402
from shapecalc.train.loop import train  # noqa: E402
from shapecalc.train.report import Reporter  # noqa: E402

ARGS = dict(device="cpu", epochs=1, batch_size=64, lr=0.05, image_size=65, limit_train=256,
            limit_test=256, seed=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")
def test_two_gloo_ranks_agree_with_one_process(fashion_mnist_dir, tmp_path):
    out = tmp_path / "ddp"
    cli = ["--data-dir", str(fashion_mnist_dir), "--out", str(out)]
    for key, value in ARGS.items():
        cli += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}", "-m", "shapecalc", "train", *cli]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("shape check:") == 1  # rank 1 prints nothing
    assert "x2 ranks" in proc.stdout
    ddp = json.loads((out / "metrics.json").read_text())
    assert ddp["environment"]["world_size"] == 2
    d = ddp["epochs"][0]

    single = train(TrainConfig(data_dir=str(fashion_mnist_dir), **ARGS),
                   reporter=Reporter(io.StringIO())).history[0]
    # Train accuracy over 256 images is a count/256 in both: the ranks' sums were reduced.
    assert round(d["train_acc"] * 256) == pytest.approx(d["train_acc"] * 256, abs=1e-6)
    # Measured: loss 2.3050 vs 2.3022, test loss 2.3010 vs 2.3012, test acc 0.141 vs 0.117.
    assert abs(d["loss"] - single.loss) < 0.02, (d, single)
    assert abs(d["test_loss"] - single.test_loss) < 0.01, (d, single)
    assert abs(d["test_acc"] - single.test_acc) < 0.1, (d, single)
