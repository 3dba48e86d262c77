"""``shapecalc train``: train a zoo model on Fashion-MNIST with the d2l AlexNet defaults.

torch (and ``shapecalc.train``) is imported inside the command, so ``shapecalc --help`` and
the other commands never pay for it.
"""

from __future__ import annotations

import sys

import click

from ..errors import UsageError

# Options a resumed run takes from its checkpoint; giving a different value is an error.
FIXED_ON_RESUME = ("model", "batch_size", "lr", "image_size", "data_dir", "limit_train",
                   "limit_test", "amp", "channels_last", "seed", "synthetic")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", default="alexnet", show_default=True, help="Zoo model to train.")
@click.option("--device", default="auto", show_default=True,
              help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--lr", type=float, default=0.01, show_default=True, help="SGD learning rate.")
@click.option("--image-size", type=int, default=None, metavar="SIZE",
              help="Resize images to SIZE×SIZE on the device (default: the model's input, 224 for alexnet).")
@click.option("--data-dir", default=None, metavar="DIR",
              help="Folder with the four Fashion-MNIST .gz files (else $SHAPECALC_DATA, the cache, Debian's).")
@click.option("--limit-train", type=int, default=None, metavar="N", help="Use the first N training images.")
@click.option("--limit-test", type=int, default=None, metavar="N", help="Use the first N test images.")
@click.option("--amp/--no-amp", default=None, help="bf16 autocast (default: on for CUDA only).")
@click.option("--channels-last/--no-channels-last", default=None,
              help="NHWC memory format (default: on for CUDA only).")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", default=None, metavar="DIR",
              help="Write metrics.json, curves.png, model.pt and a checkpoint per epoch here.")
@click.option("--resume", default=None, metavar="PATH", help="Continue from a checkpoint.pt.")
@click.option("--synthetic", is_flag=True, help="Random data of Fashion-MNIST's shape (no files needed).")
@click.option("--force", is_flag=True, help="Overwrite an earlier run's files in --out.")
@click.pass_context
def train(ctx: click.Context, model, device, epochs, batch_size, lr, image_size, data_dir,
          limit_train, limit_test, amp, channels_last, compile_, seed, out, resume, synthetic,
          force) -> None:
    """Train MODEL on Fashion-MNIST, checking every layer's shape on the device first.

    Defaults are d2l's AlexNet setup: 224×224, batch 128, SGD lr 0.01, 10 epochs.
    Multi-GPU: torchrun --nproc_per_node=N -m shapecalc train ...
    """
    from ..train.config import TrainConfig

    config = TrainConfig(model=model, device=device, epochs=epochs, batch_size=batch_size, lr=lr,
                         image_size=image_size, data_dir=data_dir, limit_train=limit_train,
                         limit_test=limit_test, amp=amp, channels_last=channels_last,
                         compile=compile_, seed=seed, out=out, synthetic=synthetic, force=force)
    config.validate()
    if resume is not None:
        _check_resume_options(ctx, config, resume)
    from ..train.loop import Interrupted, train as run_training

    try:
        run_training(config, resume_path=resume)
    except Interrupted as stop:
        click.echo(f"shapecalc: {stop.message}", err=True)
        sys.exit(130)


def _check_resume_options(ctx: click.Context, config, resume: str) -> None:
    """A resumed run keeps its configuration: refuse explicit options that contradict it."""
    from pathlib import Path

    from ..train import checkpoint as ckpt

    saved = ckpt.load(resume)["config"]
    source = click.core.ParameterSource.COMMANDLINE
    for name in FIXED_ON_RESUME:
        if ctx.get_parameter_source(name) == source and getattr(config, name) != saved.get(name):
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag}: the run in {Path(resume).parent} used {saved.get(name)!r}; "
                             "a resumed run keeps its settings (only --epochs, --device, --compile change)")
    if config.out is not None and Path(config.out).resolve() != Path(resume).resolve().parent:
        raise UsageError(f"--out: a resumed run writes into its own directory {Path(resume).parent}")
    if ctx.get_parameter_source("epochs") != source:
        config.epochs = saved["epochs"]
