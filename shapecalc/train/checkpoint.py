"""Run directories, checkpoints and the RNG states that make a resume bit-for-bit.

A checkpoint holds the model, the optimiser, how far the run got (completed epochs and, after
Ctrl-C, batches into the next one with the partial sums), the data generator's state at the
start of that epoch (so its permutation is redrawn identically) and torch's CPU/CUDA RNG
states (dropout). Files are written to ``*.tmp`` and renamed, so a crash mid-write never
destroys the previous checkpoint, and loaded with ``weights_only=True``: data is never code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import UsageError
from .errors import TrainError

FORMAT = "shapecalc-train/1"
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
MODEL = "model.pt"
PLOT = "curves.png"
OUTPUTS = (METRICS, CHECKPOINT, MODEL, PLOT)


def prepare_out(out: Path, force: bool) -> None:
    """Create ``out``; refuse (one line naming the file) if an earlier run's files are there."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a directory")
    if not force:
        for name in OUTPUTS:
            if (out / name).exists():
                raise UsageError(
                    f"--out {out}: {name} from an earlier run is there; use another --out, "
                    f"--resume {out / CHECKPOINT} to continue it, or --force to overwrite"
                )
    out.mkdir(parents=True, exist_ok=True)


def rng_states(device: torch.device) -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def restore_rng(states: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, **state}, tmp)
    os.replace(tmp, path)


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--resume {path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad file; all mean "not readable"
        raise TrainError(f"--resume {path}: not a readable checkpoint ({type(err).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TrainError(f"--resume {path}: not a shapecalc training checkpoint")
    return state
