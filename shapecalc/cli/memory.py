"""``shapecalc memory MODEL``: what one training step holds per layer and in total, and each
layer on a device's roofline. The figures are :mod:`shapecalc.core.memory`'s and
:mod:`shapecalc.core.roofline`'s; the words and the JSON are :mod:`shapecalc.output.memory`'s.
Nothing here imports torch unless MODEL is a Python model.
"""

from __future__ import annotations

import json

import click

from shapecalc.core.errors import ArgumentError, UsageError
from shapecalc.cli.common import build_options, max_nodes_option
from shapecalc.cli.model_input import input_option, load_and_analyze

#: Library parameters → this command's flags (an error names what the user typed).
_FLAGS = {"batch": "--batch", "dtype": "--dtype", "amp": "--amp", "optimizer": "--optimizer",
          "mode": "--mode", "device": "--device", "peak_flops": "--peak-flops",
          "bandwidth": "--bandwidth"}


def _positive(flag: str):
    def check(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
        if value is not None and not 0 < value < 1e21:
            raise UsageError(f"{flag}: expected a positive number below 1e21, got {value:g}")
        return value
    return check


@click.command(epilog="\b\nExample: shapecalc memory alexnet --batch 128 --optimizer adam --device a100")
@click.argument("model")
@input_option()
@max_nodes_option()
@build_options()
@click.option("--batch", type=int, default=None, metavar="N",
              help="Batch size of every input (default: the input's own).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default="float32",
              show_default=True, help="Element type of parameters and activations.")
@click.option("--amp", is_flag=True, help="bfloat16 autocast with float32 master weights.")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam", "adamw"]),
              default="adam", show_default=True, help="Optimizer whose state is counted.")
@click.option("--mode", type=click.Choice(["train", "eval"]), default="train", show_default=True,
              help="Module mode during the step (eval: dropout off, batch norm on running stats).")
@click.option("--device", default=None, metavar="NAME",
              help="Roofline device: h200, h100, a100, l4, t4, laptop-cpu (default h100).")
@click.option("--peak-flops", type=float, default=None, metavar="FLOP/S",
              callback=_positive("--peak-flops"), help="Override the device's peak FLOP/s.")
@click.option("--bandwidth", type=float, default=None, metavar="BYTES/S",
              callback=_positive("--bandwidth"), help="Override the device's memory bandwidth.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON (bytes).")
def memory(model: str, input_shape: tuple[str, ...], batch: int | None, dtype: str, amp: bool,
           optimizer: str, mode: str, device: str | None, peak_flops: float | None,
           bandwidth: float | None, as_json: bool) -> int:
    """Training memory of MODEL per layer (parameters, gradients, optimizer state, activations
    saved for backward), the peaks of a training step and of inference, and a roofline.
    """
    from shapecalc.core import memory as core_memory
    from shapecalc.core import roofline as core_roofline

    try:  # flags first: a typo fails before the model is loaded
        core_memory.check_batch(batch)
        core_memory.settings(dtype, amp, optimizer, mode)
        core_roofline.device(device or core_roofline.DEFAULT_DEVICE)
    except ArgumentError as err:
        raise UsageError(f"{_FLAGS.get(err.param, err.param)}: {err.detail}") from None
    src, analysis = load_and_analyze(model, input_shape, "float32", mode)
    from shapecalc.output.memory import memory_dict, memory_text, view

    try:
        result = view(analysis, batch, optimizer, dtype, amp, mode, device, peak_flops, bandwidth)
    except ArgumentError as err:
        raise UsageError(f"{_FLAGS.get(err.param, err.param)}: {err.detail}") from None
    if as_json:
        click.echo(json.dumps(memory_dict(result), indent=2))
    else:
        click.echo(memory_text(result), nl=False)
    return 0
