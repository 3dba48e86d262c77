"""What a run leaves in its folder, each file written through :mod:`shapecalc.core.fileio`.

``metrics.json`` (settings, environment, every epoch, the summary), ``model.pt`` (the model as
the engine's spec, its input size and its weights: what :func:`shapecalc.load_trained` reads)
and ``curves.png``. ``checkpoint.pt`` is :mod:`.checkpoint`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shapecalc.core.fileio import write_with
from shapecalc.train import checkpoint as ckpt
from shapecalc.train.metrics import EpochMetrics, metrics_text, summary


def metrics_document(status: str, config: dict[str, Any], model: dict[str, Any],
                     environment: dict[str, Any], amp: bool, channels_last: bool,
                     history: list[EpochMetrics], wall_seconds: float) -> str:
    """metrics.json's text. ``wall_seconds``: this process's training wall time so far, from
    the start of its first epoch to the end of the last evaluation (checkpoint writes that
    overlap training included)."""
    return metrics_text({
        "status": status, "config": config, "model": model, "environment": environment,
        "amp": amp, "channels_last": channels_last, "wall_seconds": wall_seconds,
        "epochs": [m.to_json() for m in history], "summary": summary(history),
    })


def save_model_file(path: Path, model: dict[str, Any], image_size: int, module) -> None:
    """model.pt: the spec, the input size and the weights (a CPU copy), atomically."""
    ckpt.save(path, {"model": model, "image_size": image_size,
                     "weights": ckpt.to_cpu(module.state_dict())}, fmt=ckpt.MODEL_FORMAT)


def write_plot(history: list[EpochMetrics], path: Path, title: str) -> bool:
    """curves.png through a temporary file; ``False`` when matplotlib is not installed."""
    from shapecalc.train.plot import figure

    fig = figure(history, title)
    if fig is None:
        return False
    try:
        write_with(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"), param="--out")
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return True


def missing_folders(out: str | Path | None) -> list[Path]:
    """The folders that creating ``out`` would make, deepest first (none when it exists)."""
    if out is None:
        return []
    made, path = [], Path(out).absolute()
    while not path.exists() and path != path.parent:
        made.append(path)
        path = path.parent
    return made


def remove_empty(folders: list[Path]) -> None:
    """Take away, deepest first, the folders a failed run made and wrote nothing into; a folder
    that holds anything (a checkpoint, a file of the user's) is left as it is."""
    for folder in folders:
        try:
            folder.rmdir()  # only ever removes an empty folder
        except OSError:
            return


__all__ = ["metrics_document", "missing_folders", "remove_empty", "save_model_file", "write_plot"]
