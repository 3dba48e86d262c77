"""A roofline per layer: arithmetic intensity, compute- or memory-bound on a device, and time.

A layer doing ``F`` FLOPs while reading and writing ``B`` bytes (its weights, inputs and
output) takes at least ``max(F / peak, B / bandwidth)`` on a device: it is compute-bound when
its intensity ``F / B`` is above the device's ridge ``peak / bandwidth``, else memory-bound.
That is a lower bound (perfect reuse in caches, peak clocks); its use is the comparison of
layers and devices, and which limit each layer hits.

The device table holds published peaks (dense, no sparsity), each with its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shapecalc.core.inputs import DTYPE_BYTES
from shapecalc.core.errors import ArgumentError

if TYPE_CHECKING:
    from shapecalc.core.analysis import Analysis
    from shapecalc.core.memory import MemoryReport

T = 1e12
G = 1e9


@dataclass(frozen=True, slots=True)
class Device:
    """Peak FLOP/s per element type (``None``: the device has no such arithmetic) and memory
    bandwidth in bytes/s."""

    name: str
    label: str
    flops: dict[str, float | None]
    bandwidth: float
    cuda: bool

    def peak(self, dtype: str) -> float | None:
        return self.flops.get(dtype)


DEVICES: dict[str, Device] = {
    # NVIDIA H200 SXM datasheet (nvidia.com/en-us/data-center/h200): BF16/FP16 Tensor Core
    # 1,979 TFLOPS with sparsity, so 989 dense; FP32 67 TFLOPS; HBM3e 4.8 TB/s.
    "h200": Device("h200", "NVIDIA H200 SXM",
                   {"bfloat16": 989 * T, "float16": 989 * T, "float32": 67 * T}, 4.8e12, True),
    # NVIDIA H100 SXM datasheet (nvidia.com/en-us/data-center/h100): BF16/FP16 Tensor Core
    # 1,979 TFLOPS with sparsity (989 dense); FP32 67 TFLOPS; HBM3 3.35 TB/s.
    "h100": Device("h100", "NVIDIA H100 SXM",
                   {"bfloat16": 989 * T, "float16": 989 * T, "float32": 67 * T}, 3.35e12, True),
    # NVIDIA A100 datasheet (nvidia.com/en-us/data-center/a100), 80 GB SXM: BF16/FP16 Tensor
    # Core 312 TFLOPS (624 with sparsity); FP32 19.5 TFLOPS; HBM2e 2,039 GB/s.
    "a100": Device("a100", "NVIDIA A100 80GB SXM",
                   {"bfloat16": 312 * T, "float16": 312 * T, "float32": 19.5 * T}, 2.039e12, True),
    # NVIDIA L4 datasheet (nvidia.com/en-us/data-center/l4): BF16/FP16 Tensor Core 242 TFLOPS
    # with sparsity (121 dense); FP32 30.3 TFLOPS; GDDR6 300 GB/s.
    "l4": Device("l4", "NVIDIA L4",
                 {"bfloat16": 121 * T, "float16": 121 * T, "float32": 30.3 * T}, 300 * G, True),
    # NVIDIA T4 datasheet (nvidia.com/en-us/data-center/tesla-t4): mixed-precision FP16/FP32
    # Tensor Core 65 TFLOPS; single precision 8.1 TFLOPS; GDDR6 320 GB/s. Turing has no
    # bfloat16 arithmetic: unknown, not a guess.
    "t4": Device("t4", "NVIDIA T4",
                 {"bfloat16": None, "float16": 65 * T, "float32": 8.1 * T}, 320 * G, True),
    # A typical laptop CPU, AMD Ryzen 7 7840U (amd.com product page: 8 Zen 4 cores, 3.3 GHz
    # base, LPDDR5x-7500 on a 128-bit bus). Zen 4 retires two 256-bit FMAs per cycle (AMD's
    # Zen 4 software optimisation guide): 8 cores × 3.3 GHz × 32 FP32 FLOPs = 845 GFLOP/s;
    # AVX512_BF16 dot products double that for bfloat16 (1.69 TFLOP/s); there is no FP16
    # arithmetic. Bandwidth 7.5 GT/s × 16 bytes = 120 GB/s.
    "laptop-cpu": Device("laptop-cpu", "laptop CPU (AMD Ryzen 7 7840U)",
                         {"bfloat16": 1.69 * T, "float16": None, "float32": 0.845 * T},
                         120 * G, False),
}


#: The device ``shapecalc memory`` assumes without ``--device``: the commonest training GPU.
DEFAULT_DEVICE = "h100"


def device(name: str) -> Device:
    found = DEVICES.get(str(name).lower()) if isinstance(name, str) else None
    if found is None:
        raise ArgumentError("device", f"expected one of {', '.join(DEVICES)}, got {name!r}")
    return found


def custom(base: Device, peak_flops: float | None = None, bandwidth: float | None = None,
           dtype: str = "float32") -> Device:
    """``base`` with a peak (for ``dtype``) or a bandwidth of the user's own, in FLOP/s and bytes/s."""
    for param, value in (("peak_flops", peak_flops), ("bandwidth", bandwidth)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0 < value < 1e21):
            raise ArgumentError(param, f"expected a positive number below 1e21, got {value!r}")
    flops = dict(base.flops)
    if peak_flops is not None:
        flops[dtype] = float(peak_flops)
    label = base.label + (" (your figures)" if peak_flops or bandwidth else "")
    return Device(base.name, label, flops, float(bandwidth or base.bandwidth), base.cuda)


@dataclass(frozen=True, slots=True)
class LayerRoof:
    """One node on the roofline. ``flops`` and everything from it are ``None`` where the MACs
    are unknown; ``seconds`` is ``None`` where the device lacks the element type too."""

    name: str
    flops: int | None
    bytes: int
    intensity: float | None
    bound: str | None  # "compute" or "memory"
    seconds: float | None


@dataclass(frozen=True)
class Roofline:
    device: Device
    dtype: str
    layers: tuple[LayerRoof, ...]
    forward_seconds: float | None
    train_seconds: float | None
    ridge: float | None  # FLOPs per byte where the device turns compute-bound

    def to_dict(self) -> dict:
        return {"device": self.device.name, "label": self.device.label, "dtype": self.dtype,
                "peak_flops": self.device.peak(self.dtype), "bandwidth": self.device.bandwidth,
                "ridge": self.ridge, "forward_seconds": self.forward_seconds,
                "train_step_seconds": self.train_seconds,
                "layers": [{"name": r.name, "flops": r.flops, "bytes": r.bytes,
                            "intensity": r.intensity, "bound": r.bound, "seconds": r.seconds}
                           for r in self.layers]}


def roofline(analysis: Analysis, memory: MemoryReport, dev: Device) -> Roofline:
    """Every node of ``analysis`` on ``dev``'s roofline, with the dtype and bytes ``memory``
    used. Training time assumes backward does twice the forward's FLOPs and bytes (a gradient
    for the input and one for the weights) and the optimizer reads and writes parameters,
    gradients and state once."""
    dtype = "bfloat16" if memory.amp else memory.dtype
    peak = dev.peak(dtype)
    rows: list[LayerRoof] = []
    forward: float | None = 0.0
    names = analysis.graph.input_names if analysis.graph else ("input",)
    out_bytes = {m.name: m.output for m in memory.layers}
    sizes: dict[str, int] = {n: _size(i.shape, i.dtype, memory)
                             for n, i in zip(names, analysis.inputs)}
    sizes.update(out_bytes)
    nodes = analysis.graph.nodes if analysis.graph else [None] * len(analysis.records)
    for rec, mem, node in zip(analysis.records, memory.layers, nodes):
        read = sum(sizes.get(i, 0) for i in node.inputs) if node is not None else 0
        moved = read + mem.output + rec.params * DTYPE_BYTES[dtype]
        macs = rec.macs
        if macs is None:
            rows.append(LayerRoof(rec.name, None, moved, None, None, None))
            forward = None
            continue
        flops = 2 * macs
        intensity = flops / moved if moved else None
        seconds = None if peak is None else max(flops / peak, moved / dev.bandwidth)
        bound = None
        if peak is not None:
            bound = "compute" if flops / peak >= moved / dev.bandwidth else "memory"
        rows.append(LayerRoof(rec.name, flops, moved, intensity, bound, seconds))
        forward = None if forward is None or seconds is None else forward + seconds
    train = None
    if forward is not None:
        update = memory.parameters + memory.gradients + (memory.optimizer_state or 0)
        train = 3 * forward + 2 * update / dev.bandwidth
    return Roofline(dev, dtype, tuple(rows), forward, train,
                    peak / dev.bandwidth if peak is not None else None)


def _size(shape, kind: str, memory: MemoryReport) -> int:
    """An input's bytes: token ids in their own type, images in the step's."""
    from math import prod

    floats = ("float32", "bfloat16", "float16")
    step = "bfloat16" if memory.amp else memory.dtype
    return prod(shape) * DTYPE_BYTES[step if kind in floats else kind]


__all__ = ["DEFAULT_DEVICE", "DEVICES", "Device", "LayerRoof", "Roofline", "custom", "device", "roofline"]
