"""Run directories, checkpoints and the RNG states that make a resume bit-for-bit.

A checkpoint holds the model as the engine's JSON spec (plus its zoo name), its weights, the
optimiser, how far the run got (completed epochs and, after Ctrl-C, batches into the next one
with the partial sums), the data generator's state at the start of that epoch (so its
permutation is redrawn identically), torch's CPU/CUDA RNG states (dropout) and the run's
settings, its CPU thread count included (summation order, hence the last bits, depends on it).

Data is never code: checkpoints are loaded with ``weights_only=True``, every entry is checked
for presence and type (one line naming the entry otherwise), and the model is rebuilt from
the stored spec without importing or calling anything the file names. Every file goes through
:mod:`shapecalc.core.fileio` (temporary file in the same folder, then a rename), so a crash, a full
disk or Ctrl-C mid-write leaves the previous file whole and no temporary behind.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

import torch

from shapecalc.core.bounds import Bound
from shapecalc.core.errors import ArgumentError, UsageError
from shapecalc.core.fileio import NotRegularFile, OutputError, open_input, write_with
from shapecalc.core.safetext import preview
from shapecalc.train.config import is_cuda
from shapecalc.train.errors import TrainError

FORMAT = "shapecalc-train/3"  # /3: the weights' SHA-256 is stored and checked
MODEL_FORMAT = "shapecalc-model/2"
#: Entry holding the SHA-256 of the weights as saved; a file whose weights do not match it (a
#: flipped byte, an edited tensor) is refused instead of trained on.
DIGEST = "weights_sha256"
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
MODEL = "model.pt"
PLOT = "curves.png"
OUTPUTS = (METRICS, CHECKPOINT, MODEL, PLOT)


def prepare_out(out: Path, force: bool) -> None:
    """Create ``out`` and prove it writable, before any training; refuse an earlier run's files."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a directory")
    if not force:
        for name in OUTPUTS:
            if (out / name).exists():
                raise UsageError(
                    f"--out {out}: {name} from an earlier run is there; use another --out, "
                    f"--resume {out / CHECKPOINT} to continue it, or --force to overwrite"
                )
    check_writable(out)


def check_writable(out: Path) -> None:
    """Create ``out`` (and its parents) and write one probe file there, and refuse an output
    that must not be replaced (a symbolic link, a FIFO, a folder named ``checkpoint.pt``):
    fail now, before training, not after an epoch with nothing saved."""
    from shapecalc.core.fileio import os_error_reason, check_target

    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".shapecalc-probe.", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(f"--out {out}: cannot write there: {os_error_reason(err)}", param="--out",
                          path=str(out)) from None
    for name in OUTPUTS:
        check_target(out / name, "--out")


def rng_states(device: torch.device) -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if is_cuda(device):
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def restore_rng(states: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    if is_cuda(device) and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def to_cpu(value: Any) -> Any:
    """A copy of ``value`` with every tensor copied to the CPU: a snapshot training cannot change."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(v) for v in value)
    return value


def weights_digest(weights: dict[str, Any]) -> str:
    """SHA-256 over every weight's name, dtype, shape and bytes, in name order."""
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(weights):
        tensor = weights[name].detach().to("cpu").contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save(path: Path, state: dict[str, Any], fmt: str = FORMAT) -> None:
    """``torch.save`` through a temporary file in the same folder, renamed when complete, with
    the weights' digest. torch reports a failed write (a full disk) as a ``RuntimeError``; it
    becomes an ``OSError`` here, so it is one line and the previous file stays whole."""
    full = {"format": fmt, **state}
    if "weights" in state:
        full[DIGEST] = weights_digest(state["weights"])

    def write(tmp: Path) -> None:
        try:
            torch.save(full, tmp)
        except RuntimeError as err:
            import errno
            import shutil

            free = shutil.disk_usage(tmp.parent).free
            code = errno.ENOSPC if free < 1 << 20 else errno.EIO
            raise OSError(code, f"torch.save failed: {str(err).splitlines()[0][:200]}") from None

    write_with(path, write, param="--out")


class BackgroundWriter:
    """Writes files in one background thread so the next epoch starts at once.

    A job is a list of callables run in order (the checkpoint, then the metrics that say it
    exists). Only one job runs at a time: :meth:`submit` waits for the previous one. An error
    in the thread (disk full) is raised in the training thread by the next :meth:`wait`; the
    temporary file it left is already removed by :mod:`shapecalc.core.fileio`.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, *jobs: Callable[[], None]) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(jobs,), name="shapecalc-writer")
        self._thread.start()

    def _run(self, jobs) -> None:
        try:
            for job in jobs:
                job()
        except BaseException as err:  # handed to the training thread by wait()
            self._error = err

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


# -- loading, checked ------------------------------------------------------------------------
def load(path: str | Path, what: str = "--resume", fmt: str = FORMAT) -> dict[str, Any]:
    """Read a checkpoint (or ``model.pt`` with ``fmt=MODEL_FORMAT``); one line for any bad file."""
    path = Path(path)
    where = f"{what} {path}"
    if not path.exists():
        raise UsageError(f"{where}: no such {'checkpoint' if fmt == FORMAT else 'model'} file")
    try:
        with open_input(path) as handle:
            _check_archive(handle, where)
            state = torch.load(handle, map_location="cpu", weights_only=True)
    except TrainError:
        raise
    except NotRegularFile as err:
        raise UsageError(f"{where}: {err.strerror}") from None
    except Exception as err:  # torch raises many types for a bad file; all mean "not readable"
        raise TrainError(f"{where}: not a readable checkpoint ({type(err).__name__})") from None
    if not isinstance(state, dict) or not isinstance(state.get("format"), str) \
            or not state["format"].startswith(fmt.split("/")[0] + "/"):
        raise TrainError(f"{where}: not a shapecalc {'training checkpoint' if fmt == FORMAT else 'model file'}")
    if state["format"] != fmt:
        raise TrainError(f"{where}: written by another shapecalc version ({state['format']}, "
                         f"this one reads {fmt}); start a new run")
    (check_state if fmt == FORMAT else check_model_file)(state, where)
    if not isinstance(state.get(DIGEST), str) or state[DIGEST] != weights_digest(state["weights"]):
        raise TrainError(f"{where}: the weights do not match the digest saved with them (the file "
                         "was changed or damaged after it was written)")
    return state


def _check_archive(handle: Any, where: str) -> None:
    """Before ``torch.load`` decompresses anything: the file is a zip archive as ``torch.save``
    writes it (entries stored, not compressed), so what it unpacks to is at most its own size.
    A compressed entry is how a 3 MB file unpacks to gigabytes; torch never writes one."""
    import zipfile

    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise TrainError(f"{where}: not a readable checkpoint (not a zip archive as torch.save "
                         "writes)") from None
    size = os.fstat(handle.fileno()).st_size
    total = 0
    for info in archive.infolist():
        total += info.file_size
        if info.compress_type != zipfile.ZIP_STORED or total > size:
            raise TrainError(f"{where}: entry {preview(info.filename, 60)} unpacks to more than "
                             "the file holds (torch.save stores entries uncompressed); refusing it")
    handle.seek(0)


def _need(state: dict, key: str, types: type | tuple, what: str, where: str) -> Any:
    if key not in state:
        raise TrainError(f"{where}: the checkpoint has no {key!r} entry ({what})")
    value = state[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
        raise TrainError(f"{where}: entry {key!r} should be {what}, got {type(value).__name__}")
    return value


def _tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _check_weights(weights: dict, where: str, key: str = "weights") -> None:
    for name, value in weights.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise TrainError(f"{where}: entry {key!r} should map names to tensors, "
                             f"got {type(value).__name__} for {name!r}")


def check_state(state: dict[str, Any], where: str) -> None:
    """Every entry a resume reads is present and of the right type (values checked later)."""
    from shapecalc.train.metrics import EpochMetrics

    from shapecalc.train.config import TrainConfig

    TrainConfig.from_json(_need(state, "config", dict, "the run's settings, a mapping", where), where)
    _need(state, "model", dict, "the model's spec, a mapping", where)
    _check_weights(_need(state, "weights", dict, "the model's weights, a mapping", where), where)
    optimizer = _need(state, "optimizer", dict, "the optimiser state, a mapping", where)
    if not isinstance(optimizer.get("state"), dict) or not isinstance(optimizer.get("param_groups"), list):
        raise TrainError(f"{where}: entry 'optimizer' should hold 'state' and 'param_groups'")
    for key in ("epoch", "batch"):
        if _need(state, key, int, "a count, an integer ≥ 0", where) < 0:
            raise TrainError(f"{where}: entry {key!r} should be ≥ 0, got {state[key]}")
    rng = _need(state, "data_rng", torch.Tensor, "the data order's generator state", where)
    rngs = _need(state, "rng", dict, "torch's RNG states, a mapping", where)
    for name, value in [("data_rng", rng), *((f"rng.{k}", v) for k, v in rngs.items())]:
        if not isinstance(value, torch.Tensor) or value.dtype != torch.uint8:
            raise TrainError(f"{where}: entry {name!r} should be a uint8 RNG state tensor")
    if "torch" not in rngs:
        raise TrainError(f"{where}: entry 'rng' has no 'torch' state")
    history = _need(state, "history", list, "the finished epochs' metrics, a list", where)
    fields = set(EpochMetrics.__dataclass_fields__)
    for i, item in enumerate(history):
        if not isinstance(item, dict) or set(item) != fields:
            raise TrainError(f"{where}: entry 'history[{i}]' should hold the numbers "
                             f"{', '.join(sorted(fields))}")
        _values(HISTORY_LIMITS, item, f"history[{i}]", where)
        if item["epoch"] != i + 1:
            raise TrainError(f"{where}: entry 'history[{i}].epoch' should be {i + 1}, got "
                             f"{preview(item['epoch'])}")
    if len(history) != state["epoch"]:
        raise TrainError(f"{where}: 'history' lists {len(history)} epochs but 'epoch' says "
                         f"{state['epoch']} are done")
    partial = state.get("partial")
    if partial is not None:
        if not isinstance(partial, dict) or set(partial) != set(PARTIAL_LIMITS):
            raise TrainError(f"{where}: entry 'partial' should be null or hold the numbers "
                             "loss_sum, correct, seen, seconds")
        _values(PARTIAL_LIMITS, partial, "partial", where)
        if partial["correct"] > partial["seen"]:
            raise TrainError(f"{where}: entry 'partial' counts more correct images than it saw")
    for key in ("epoch", "batch"):
        _values({key: COUNT}, state, key, where)
    groups = optimizer["param_groups"]
    lr = state["config"].get("lr")
    for i, group in enumerate(groups):
        if not isinstance(group, dict):
            raise TrainError(f"{where}: entry 'optimizer.param_groups[{i}]' should be a mapping")
        _values(GROUP_LIMITS, group, f"optimizer.param_groups[{i}]", where)
        if group.get("lr") != lr:  # SGD at a constant rate: the group's is the run's --lr
            raise TrainError(f"{where}: entry 'optimizer.param_groups[{i}].lr' is "
                             f"{preview(group.get('lr'))}, but the run's lr is {preview(lr)}")


#: What a stored epoch, a partial epoch and an optimiser group may hold (checked like flags).
COUNT = Bound(int, 0, 2**40)
_SECONDS = Bound(float, 0, 1e9)
HISTORY_LIMITS = {
    "epoch": Bound(int, 1, 100_000), "loss": Bound(float, 0, 1e30),
    "train_acc": Bound(float, 0, 1), "test_loss": Bound(float, 0, 1e30),
    "test_acc": Bound(float, 0, 1), "images_per_s": Bound(float, 0, 1e12),
    "seconds": _SECONDS, "eval_seconds": _SECONDS,
}
PARTIAL_LIMITS = {"loss_sum": Bound(float, 0, 1e30), "correct": COUNT, "seen": COUNT,
                  "seconds": _SECONDS}
GROUP_LIMITS = {"lr": Bound(float, 0, 1e3, above_low=True), "momentum": Bound(float, 0, 1),
                "dampening": Bound(float, 0, 1), "weight_decay": Bound(float, 0, 1e3)}


def _values(limits: dict[str, Bound], values: dict, key: str, where: str) -> None:
    """Each value ``limits`` declares, as a flag would be checked; one line naming the entry."""
    for name, bound in limits.items():
        if name not in values:
            continue
        try:
            bound.check(name, values[name])
        except ArgumentError as err:
            entry = key if key == name else f"{key}.{name}"
            raise TrainError(f"{where}: entry {entry!r} {err.detail}") from None


def check_model_file(state: dict[str, Any], where: str) -> None:
    _need(state, "model", dict, "the model's spec, a mapping", where)
    _check_weights(_need(state, "weights", dict, "the model's weights, a mapping", where), where)
    _need(state, "image_size", int, "the input size, an integer", where)
    from shapecalc.train.config import LIMITS

    _values({"image_size": LIMITS["image_size"]}, state, "image_size", where)


def load_weights(module: torch.nn.Module, weights: dict[str, Any], where: str) -> None:
    """``load_state_dict`` with every mismatch (missing, unexpected, wrong shape) as one line."""
    own = module.state_dict()
    missing = [k for k in own if k not in weights]
    extra = [k for k in weights if k not in own]
    if missing or extra:
        parts = ([f"missing {', '.join(missing[:3])}"] if missing else []) + \
                ([f"unexpected {', '.join(extra[:3])}"] if extra else [])
        raise TrainError(f"{where}: the stored weights do not fit the model ({'; '.join(parts)})")
    for k, value in own.items():
        if tuple(weights[k].shape) != tuple(value.shape):
            raise TrainError(f"{where}: weight {k!r} is {'x'.join(map(str, weights[k].shape))} in "
                             f"the file, the model's is {'x'.join(map(str, value.shape))}")
    try:
        module.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError) as err:
        raise TrainError(f"{where}: the stored weights do not load: {str(err).splitlines()[0]}") from None
