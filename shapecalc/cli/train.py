"""``shapecalc train``: train a model on Fashion-MNIST with the d2l AlexNet defaults.

torch (and ``shapecalc.train``) is imported inside the command, so ``shapecalc --help`` and
the other commands never pay for it; without torch the command is one line saying what to
install. The model is resolved once, here, and the resolved source is handed to the run.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from shapecalc.cli.common import AsciiFloat, AsciiInt
from shapecalc.core.errors import UsageError

# Options a resumed run takes from its checkpoint; giving a different value is an error.
FIXED_ON_RESUME = ("model", "batch_size", "lr", "image_size", "data_dir", "limit_train",
                   "limit_test", "amp", "channels_last", "seed", "synthetic", "threads")
RUNS = "runs"


@click.command(context_settings={"help_option_names": ["-h", "--help"]},
               epilog="\b\nExample: shapecalc train --model lenet --epochs 5 --out runs/lenet")
@click.option("--model", default="alexnet", show_default=True, metavar="MODEL",
              help="A zoo name, a spec file (.json/.yaml/.toml) or a Python target "
                   "(path/to/file.py:Net, package.module:make(...)), as for `show`. A Python "
                   "target runs that code, as `python file.py` would.")
@click.option("--device", default="auto", show_default=True,
              help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.")
@click.option("--epochs", type=AsciiInt(), default=10, show_default=True)
@click.option("--batch-size", type=AsciiInt(), default=128, show_default=True)
@click.option("--lr", type=AsciiFloat(), default=0.01, show_default=True, help="SGD learning rate.")
@click.option("--image-size", type=AsciiInt(), default=None, metavar="SIZE",
              help="Resize images to SIZE×SIZE on the device (default: the model's own input "
                   "size, 224 for alexnet, 28 for lenet; 224 when the model has none).")
@click.option("--data-dir", default=None, metavar="DIR",
              help="Folder with the four Fashion-MNIST .gz files (else $SHAPECALC_DATA, the cache, Debian's).")
@click.option("--limit-train", type=AsciiInt(), default=None, metavar="N", help="Use the first N training images.")
@click.option("--limit-test", type=AsciiInt(), default=None, metavar="N", help="Use the first N test images.")
@click.option("--amp/--no-amp", default=None, help="bf16 autocast (default: on for CUDA only).")
@click.option("--channels-last/--no-channels-last", default=None,
              help="NHWC memory format (default: on for CUDA only).")
@click.option("--compile", "compile", is_flag=True, help="torch.compile the model.")
@click.option("--threads", type=AsciiInt(), default=None, metavar="N",
              help="CPU threads (default: torch's, usually the core count). Recorded in the "
                   "checkpoint: a resumed run uses the same, so it continues bit-for-bit.")
@click.option("--seed", type=AsciiInt(), default=0, show_default=True)
@click.option("--out", default=None, metavar="DIR",
              help="Write metrics.json, curves.png, model.pt and a checkpoint per epoch here "
                   "(default: runs/<model>-<UTC time>/).")
@click.option("--no-save", is_flag=True, help="Save nothing (no folder, no checkpoint).")
@click.option("--resume", default=None, metavar="PATH", help="Continue from a checkpoint.pt.")
@click.option("--synthetic", is_flag=True, help="Random data of Fashion-MNIST's shape (no files needed).")
@click.option("--force", is_flag=True, help="Overwrite an earlier run's files in --out.")
@click.pass_context
def train(ctx: click.Context, no_save: bool, resume: str | None, **settings: Any) -> None:
    """Train MODEL on Fashion-MNIST, checking every layer's shape on the device first.

    Defaults are d2l's AlexNet setup: 224×224, batch 128, SGD lr 0.01, 10 epochs. Results go to
    runs/<model>-<UTC time>/ unless --out or --no-save; load them with shapecalc.load_trained.
    Multi-GPU: torchrun --nproc_per_node=N -m shapecalc train ...
    """
    from shapecalc.train.config import TrainConfig

    # Every other option is a TrainConfig field of the same name: the run's settings.
    config = TrainConfig(**settings)
    if no_save and config.out is not None:
        raise UsageError("--no-save: cannot be combined with --out (choose one)")
    if no_save and resume is not None:
        raise UsageError("--no-save: a resumed run writes into its own folder; drop --no-save")
    config.validate()
    from shapecalc.core.extras import require

    require("torch", "shapecalc train", "train")
    from shapecalc.train.loop import Interrupted, train as run_training
    from shapecalc.train.model import resolve

    source, state = None, None
    explicit_model = ctx.get_parameter_source("model") == click.core.ParameterSource.COMMANDLINE
    if resume is not None:
        state = _check_resume_options(ctx, config, resume)
        if explicit_model:  # the user asks for this model to be loaded (it may run code)
            source = resolve(config.model)
    else:
        source = resolve(config.model)
        if config.out is None and not no_save:
            config.out = str(default_run_dir(source.name))
    try:
        run_training(config, resume_path=resume, model=source, resume_state=state)
    except Interrupted as stop:
        click.echo(f"shapecalc: {stop.message}", err=True)
        sys.exit(130)


def default_run_dir(name: str, now: datetime | None = None) -> Path:
    """``runs/<model>-<UTC time>``: a new folder per run, sortable, safe in any file system."""
    now = now or datetime.now(timezone.utc)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"
    return Path(RUNS) / f"{safe}-{now.strftime('%Y%m%dT%H%M%SZ')}"


def _check_resume_options(ctx: click.Context, config, resume: str) -> dict:
    """A resumed run keeps its configuration: refuse explicit options that contradict it.

    Returns the checkpoint, read (and checked) once.
    """
    from shapecalc.train import checkpoint as ckpt
    from shapecalc.train.config import TrainConfig

    state = ckpt.load(resume)
    saved = TrainConfig.from_json(state["config"], f"--resume {resume}")
    source = click.core.ParameterSource.COMMANDLINE
    for name in FIXED_ON_RESUME:
        if ctx.get_parameter_source(name) == source and getattr(config, name) != getattr(saved, name):
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag}: the run in {Path(resume).parent} used {getattr(saved, name)!r}; "
                             "a resumed run keeps its settings (only --epochs, --device, --compile change)")
    if config.out is not None and Path(config.out).resolve() != Path(resume).resolve().parent:
        raise UsageError(f"--out: a resumed run writes into its own directory {Path(resume).parent}")
    if ctx.get_parameter_source("epochs") != source:
        config.epochs = saved.epochs
    return state
