"""A run's configuration, validated once, and the device it runs on.

Every numeric option is checked here with a one-line :class:`UsageError` naming the option,
so a bad value never reaches torch. ``amp`` and ``channels_last`` default to "on for CUDA,
off elsewhere": bf16 autocast and NHWC are what make convolutions fast on tensor cores,
while on the CPU they are slower and change the numbers for no gain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from shapecalc.core.bounds import Bound, check_all
from shapecalc.core.errors import ArgumentError, UsageError
from shapecalc.train.errors import TrainError


@dataclass
class TrainConfig:
    model: str = "alexnet"
    device: str = "auto"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.01
    image_size: int | None = None  # None: the model's own input size
    data_dir: str | None = None
    limit_train: int | None = None
    limit_test: int | None = None
    amp: bool | None = None
    channels_last: bool | None = None
    compile: bool = False
    seed: int = 0
    out: str | None = None
    synthetic: bool = False
    force: bool = False
    threads: int | None = None  # CPU threads; None: torch's default, recorded when the run starts

    def validate(self) -> "TrainConfig":
        """Every field against :data:`LIMITS`, whether it came from the command line or a
        checkpoint; one :class:`UsageError` naming the flag otherwise."""
        try:
            check_all(LIMITS, {f.name: getattr(self, f.name) for f in fields(self)})
        except ArgumentError as err:
            raise UsageError(f"--{err.param.replace('_', '-')}: {err.detail}") from None
        if self.image_size is not None and self.batch_size * self.image_size ** 2 > MAX_BATCH_PIXELS:
            raise UsageError(f"--batch-size {self.batch_size} × --image-size {self.image_size}²: "
                             f"more than {MAX_BATCH_PIXELS:,} pixels a batch (16 GiB as float32); "
                             "lower one of them")
        return self

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("force")
        return data

    @classmethod
    def from_json(cls, data: Any, where: str) -> "TrainConfig":
        """A stored configuration (checkpoint, metrics), every key and type checked: one line if not."""
        if not isinstance(data, dict):
            raise TrainError(f"{where}: the stored settings are not a mapping")
        values = {}
        for key, value in data.items():
            if key not in LIMITS or key == "force":
                raise TrainError(f"{where}: unknown setting {key!r} in the stored settings")
            allowed = _json_types(LIMITS[key])
            if type(value) not in allowed:
                names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
                raise TrainError(f"{where}: stored setting {key!r} should be {names}, "
                                 f"got {type(value).__name__}")
            values[key] = value
        try:
            return cls(**values).validate()
        except UsageError as err:
            raise TrainError(f"{where}: stored setting {err}") from None


#: Pixels one batch may hold (batch × size²): 2**32 float32 values is 16 GiB before the model.
MAX_BATCH_PIXELS = 2**32

#: What every setting may be, from the command line and from a stored run alike. Each maximum
#: keeps a typo or a forged file from costing hours or terabytes; the reason is said when hit.
LIMITS: dict[str, Bound] = {
    "model": Bound(str, high=4096),
    "device": Bound(str, high=64),
    "epochs": Bound(int, 1, 100_000, why="a run of more epochs is a typo"),
    "batch_size": Bound(int, 1, 2**20, why="a million images a batch"),
    "lr": Bound(float, 0, 1e3, above_low=True, why="SGD diverges at once above that"),
    "image_size": Bound(int, 1, 8192, optional=True, why="8192×8192 is 256 MiB an image"),
    "data_dir": Bound(str, high=4096, optional=True),
    "limit_train": Bound(int, 1, 2**40, optional=True),
    "limit_test": Bound(int, 1, 2**40, optional=True),
    "amp": Bound(bool, optional=True),
    "channels_last": Bound(bool, optional=True),
    "compile": Bound(bool),
    "seed": Bound(int, 0, 2**63 - 1, why="torch.manual_seed takes a 64-bit seed"),
    "out": Bound(str, high=4096, optional=True),
    "synthetic": Bound(bool),
    "force": Bound(bool),
    "threads": Bound(int, 1, 1024, optional=True, why="more threads abort the OpenMP runtime"),
}

def _json_types(bound: Bound) -> tuple[type, ...]:
    """The JSON types a stored value of a field declared ``bound`` may have (JSON writes a
    whole float such as 1.0 as it is, but an int is accepted for a float field)."""
    kinds = (float, int) if bound.kind is float else (bound.kind,)
    return kinds + ((type(None),) if bound.optional else ())


def is_cuda(device: Any) -> bool:
    """Whether ``device`` (a ``torch.device``) is a CUDA GPU: the one place that asks."""
    return device.type == "cuda"


@dataclass(frozen=True)
class DevicePolicy:
    """What the device decides for a run, decided once. On CUDA: bf16 autocast and NHWC
    (channels-last), cuDNN autotuning with TF32, a warm-up before the clock starts, and larger
    evaluation batches padded to one shape; elsewhere all of it is off, being slower on the CPU
    and changing the numbers for no gain. An explicit ``--amp``/``--channels-last`` wins."""

    device: Any
    amp: bool
    channels_last: bool

    @classmethod
    def of(cls, device: Any, config: TrainConfig) -> "DevicePolicy":
        cuda = is_cuda(device)
        return cls(device, cuda if config.amp is None else config.amp,
                   cuda if config.channels_last is None else config.channels_last)

    @property
    def cuda(self) -> bool:
        return is_cuda(self.device)

    def tune(self) -> None:
        """cuDNN picks the fastest kernels for the run's shapes; matmuls and convolutions use TF32."""
        if self.cuda:
            import torch

            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

    @property
    def warms_up(self) -> bool:
        """cuDNN's autotuning runs before epoch 1's clock starts (it only costs on the CPU)."""
        return self.cuda

    def eval_batch(self, batch_size: int) -> int:
        return min(4 * batch_size, 2048) if self.cuda else batch_size

    @property
    def pad_eval(self) -> bool:
        """One evaluation batch shape for cuDNN (on the CPU, padding only costs)."""
        return self.cuda

    def synchronize(self) -> None:
        """Wait for the device's queued work (before a clock is read)."""
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)


def resolve_device(requested: str, local_rank: int | None = None):
    """``auto`` → cuda > mps > cpu; an explicit device that does not exist is one clear line."""
    import torch

    text = requested.strip().lower()
    cuda_ok = torch.cuda.is_available()
    mps_ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if text == "auto":
        if cuda_ok:
            return torch.device("cuda", local_rank or 0)
        return torch.device("mps" if mps_ok else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not mps_ok:
            raise TrainError("--device mps: Apple MPS is not available here; use --device auto or cpu")
        return torch.device("mps")
    if text == "cuda" or text.startswith("cuda:"):
        if not cuda_ok:
            build = f"torch {torch.__version__}"
            raise TrainError(f"--device {requested}: CUDA is not available ({build}); "
                             "use --device cpu or --device auto")
        index = local_rank or 0
        if ":" in text:
            try:
                index = int(text.split(":", 1)[1])
            except ValueError:
                raise UsageError(f"--device: {requested!r} is not cuda:N") from None
        count = torch.cuda.device_count()
        if not 0 <= index < count:
            raise TrainError(f"--device {requested}: only {count} CUDA device(s), numbered from 0")
        return torch.device("cuda", index)
    raise UsageError(f"--device: expected auto, cpu, cuda, cuda:N or mps, got {requested!r}")
