"""``shapecalc layer --json`` against the real torch modules, by property.

Each example draws a command line (op, a single size or one per axis for 2-D/3-D, per-axis
kernel, stride, dilation, padding per side or total, ceil mode, output_padding), runs it
through the console entry point inside click's ``CliRunner`` isolation, builds the torch
module the command describes and applies it to a tensor of that size. Either both refuse (the
CLI with a non-zero exit and exactly one line on stderr, no traceback) or both give the same
sizes. A single size is a square image, so it is compared with the 2-D module on ``n×n``.

An odd TOTAL padding (``--p 3``) has no ``padding=`` in torch; for convolutions it is
``F.pad`` (the odd pixel after) and then the module with no padding, which is compared.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import pytest
from click.testing import CliRunner
from hypothesis import given, note
from hypothesis import strategies as st

from shapecalc.cli import main

torch = pytest.importorskip("torch")
F = torch.nn.functional

MODULES = {"conv": "Conv", "conv-transpose": "ConvTranspose", "maxpool": "MaxPool", "avgpool": "AvgPool"}
MAX_SIZE = {1: 30, 2: 30, 3: 10}


@dataclass(frozen=True)
class Command:
    op: str
    ndim: int  # 1: a single size (a square 2-D image)
    sizes: tuple[int, ...]
    options: dict[str, tuple[int, ...]]  # option → one value or one per axis
    ceil_mode: bool

    def args(self) -> list[str]:
        out = ["--op", self.op, "--json"]
        for flag, values in self.options.items():
            out += [flag, "x".join(map(str, values))]
        if self.ceil_mode:
            out.append("--ceil-mode")
        return out + ["x".join(map(str, self.sizes))]

    def axis_values(self, flag: str, default: int | None) -> tuple[int, ...] | None:
        """The option per axis of the 2-D/3-D module (``None``: not given)."""
        values = self.options.get(flag)
        axes = 2 if self.ndim == 1 else self.ndim
        if values is None:
            return None if default is None else (default,) * axes
        return values * axes if len(values) == 1 else values


def run_layer(args: list[str]) -> tuple[int, str, str]:
    """The console entry point (one-line errors, exit codes) inside click's runner."""
    runner = CliRunner()
    with runner.isolation() as (stdout, stderr, _):
        try:
            main(["layer", *args])
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        return code, stdout.getvalue().decode(), stderr.getvalue().decode()


def torch_outcome(cmd: Command) -> tuple[int, ...] | str:
    """The spatial output sizes torch gives, or its error message."""
    axes = 2 if cmd.ndim == 1 else cmd.ndim
    spatial = cmd.sizes * 2 if cmd.ndim == 1 else cmd.sizes
    kernel = cmd.axis_values("--k", None)
    kwargs: dict = {"kernel_size": kernel}
    stride = cmd.axis_values("--s", None)
    if stride is not None:
        kwargs["stride"] = stride
    dilation = cmd.axis_values("--d", None)
    if dilation is not None:
        kwargs["dilation"] = dilation
    per_side = cmd.axis_values("--padding", None)
    totals = cmd.axis_values("--p", None)
    pre_pad = None
    if totals is not None:
        if all(t % 2 == 0 for t in totals):
            per_side = tuple(t // 2 for t in totals)
        else:  # F.pad takes the last axis first, (before, after) each
            pre_pad = [x for t in reversed(totals) for x in (t // 2, t - t // 2)]
    if per_side is not None:
        kwargs["padding"] = per_side
    if cmd.op.startswith("conv"):
        kwargs.update(in_channels=1, out_channels=1)
    if "--output-padding" in cmd.options:
        kwargs["output_padding"] = cmd.axis_values("--output-padding", None)
    if cmd.ceil_mode:
        kwargs["ceil_mode"] = True
    x = torch.zeros((1, 1, *spatial))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            module = getattr(torch.nn, f"{MODULES[cmd.op]}{axes}d")(**kwargs)
            if pre_pad is not None:
                x = F.pad(x, pre_pad)
            with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
                out = module(x)
        except (RuntimeError, ValueError, TypeError) as err:
            return f"{type(err).__name__}: {str(err).splitlines()[0]}"
    return tuple(out.shape[2:])


def values(ndim: int, low: int, high: int) -> st.SearchStrategy:
    """One value for every axis, or (2-D/3-D) one per axis."""
    one = st.integers(low, high).map(lambda v: (v,))
    return one if ndim == 1 else st.one_of(one, st.tuples(*[st.integers(low, high)] * ndim))


@st.composite
def commands(draw) -> Command:
    op = draw(st.sampled_from(tuple(MODULES)))
    ndim = draw(st.sampled_from((1, 2, 3)))
    sizes = draw(st.tuples(*[st.integers(1, MAX_SIZE[ndim])] * ndim))
    options: dict[str, tuple[int, ...]] = {"--k": draw(values(ndim, 1, 7))}
    if draw(st.booleans()):
        options["--s"] = draw(values(ndim, 1, 4))
    if op != "avgpool" and draw(st.booleans()):
        options["--d"] = draw(values(ndim, 1, 3))
    padding = draw(st.sampled_from(("none", "per side", "total")))
    if padding == "per side":
        options["--padding"] = draw(values(ndim, 0, 4))
    elif padding == "total":
        totals = draw(values(ndim, 0, 8))
        if op != "conv":  # only a convolution has a torch form (F.pad first) for an odd total
            totals = tuple(t - t % 2 for t in totals)
        options["--p"] = totals
    if op == "conv-transpose" and draw(st.booleans()):
        options["--output-padding"] = draw(values(ndim, 0, 3))
    ceil_mode = op in ("maxpool", "avgpool") and draw(st.booleans())
    return Command(op, ndim, sizes, options, ceil_mode)


@given(cmd=commands())
def test_layer_json_agrees_with_torch(cmd):
    code, out, err = run_layer(cmd.args())
    expected = torch_outcome(cmd)
    note(f"shapecalc layer {' '.join(cmd.args())}")
    note(f"torch: {expected}")
    note(f"cli:   exit {code}, {out.strip() or err.strip()}")
    assert "Traceback" not in err
    if isinstance(expected, str):
        assert code != 0, f"torch refuses ({expected}) but the CLI answered {out}"
        assert out == "" and len(err.strip().splitlines()) == 1, err
        assert err.startswith("shapecalc: error: ")
        return
    assert code == 0, f"torch gives {expected} but the CLI refused: {err}"
    data = json.loads(out)
    if cmd.ndim == 1:  # a square: one number for both axes
        assert expected[0] == expected[1]
        assert data["output"] == [expected[0]]
    else:
        assert tuple(data["output"]) == expected


@st.composite
def target_commands(draw) -> tuple[Command, int]:
    """A square query (every axis alike, so one padding serves all) and a target size."""
    cmd = draw(commands().filter(lambda c: c.ndim == 1))
    options = {k: v for k, v in cmd.options.items() if k not in ("--p", "--padding")}
    return Command(cmd.op, 1, cmd.sizes, options, cmd.ceil_mode), draw(st.integers(1, 40))


@given(case=target_commands())
def test_target_padding_gives_the_target_in_torch_and_none_is_missed(case):
    """``--target``: the padding the CLI picks gives the target in torch; when it says none
    does, torch agrees for every padding it would accept (tried one by one)."""
    cmd, target = case
    code, out, err = run_layer(cmd.args()[:-1] + ["--target", str(target), cmd.args()[-1]])
    note(f"shapecalc layer {' '.join(cmd.args())} --target {target}: exit {code} {out or err}")
    assert "Traceback" not in err

    def torch_at(p: int) -> tuple[int, ...] | str:
        return torch_outcome(Command(cmd.op, 1, cmd.sizes, {**cmd.options, "--p": (p,)}, cmd.ceil_mode))

    # Only a convolution has a torch form (F.pad first) for an odd total padding.
    expressible = (lambda p: True) if cmd.op == "conv" else (lambda p: p % 2 == 0)
    if code == 0:
        data = json.loads(out)
        assert data["output"] == [target]
        found = data["solutions"][0]["paddings"]
        assert data["padding_total"][0] in range(found["from"], found["to"] + 1)
        for p in {found["from"], found["to"], data["padding_total"][0]}:
            if expressible(p):
                assert torch_at(p) == (target, target), p
        for p in (found["from"] - 1, found["to"] + 1):  # the run is complete at both ends
            if p >= 0 and expressible(p):
                assert torch_at(p) != (target, target), p
        return
    assert len(err.strip().splitlines()) == 1, err
    if "--target" not in err:
        return  # refused for another reason (bad options), compared by the property above
    # Torch pads at most 2·(k//2) ≤ 6 for pooling; a convolution's output passes the target
    # by p = 4·target + 20 (stride ≤ 4, span ≤ 19); a transposed one only shrinks with p.
    limit = {"conv": 4 * target + 20, "conv-transpose": 4 * MAX_SIZE[1] + 40}.get(cmd.op, 8)
    for p in filter(expressible, range(limit)):
        assert torch_at(p) != (target, target), f"torch gives {target} at p = {p}"
