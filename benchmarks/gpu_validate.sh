#!/usr/bin/env bash
# Validate `shapecalc train` on one CUDA GPU: the full d2l default run (AlexNet, Fashion-MNIST
# at 224x224, batch 128, SGD lr 0.01, 10 epochs) and the pipeline-vs-d2l-loop throughput
# benchmark, then print test accuracy, images/s and the speed-up, and write summary.json.
#
#   bash benchmarks/gpu_validate.sh .data/fashion-mnist [OUT_DIR]
#
# Needs only python3 with torch >= 2.4 and click (rich and matplotlib optional); runs from the
# source tree (PYTHONPATH=.), downloads nothing. Wheels in ./.whl are installed first if present
# (pip --no-index). Targets: test accuracy >= 0.883, the 10-epoch training <= 35 s of wall time
# (first epoch to last evaluation, from metrics.json), epoch 1 <= 1.5x the median later epoch,
# and speed-up >= 5x over the d2l loop; each is printed PASS/FAIL; exit 1 if one is missed.
# GPU_VALIDATE_TINY=1 runs the same steps on the CPU with tiny limits (to test this script).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DATA="$(realpath -m "${1:-$REPO/.data/fashion-mnist}")"
OUT="$(realpath -m "${2:-$REPO/runs/gpu-validate-$(date -u +%Y%m%dT%H%M%SZ)}")"
cd "$REPO"
PY="${PYTHON:-python3}"
TINY="${GPU_VALIDATE_TINY:-0}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 SHAPECALC_NO_DOWNLOAD=1
start=$(date +%s)

if [ ! -f "$DATA/train-images-idx3-ubyte.gz" ] && [ ! -f "$DATA/train-images-idx3-ubyte" ]; then
  echo "gpu_validate: no Fashion-MNIST in '$DATA' (give the folder holding the four .gz files)" >&2
  exit 2
fi
if [ -e "$OUT/train/metrics.json" ]; then
  echo "gpu_validate: $OUT already holds a run; give another OUT_DIR" >&2
  exit 2
fi
mkdir -p "$OUT"

if compgen -G ".whl/*.whl" >/dev/null; then
  echo "== installing carried wheels from .whl/"
  "$PY" -m pip install -q --no-index --find-links .whl .whl/*.whl || echo "warning: wheel install failed"
fi

echo "== environment"
"$PY" - "$TINY" <<'PYEOF'
import importlib, sys
tiny = sys.argv[1] == "1"
try:
    import torch
except ImportError:
    sys.exit("gpu_validate: torch is not installed for this python")
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, cuda available {torch.cuda.is_available()}")
if torch.cuda.is_available():
    print(f"gpu {torch.cuda.get_device_name(0)}")
elif not tiny:
    sys.exit("gpu_validate: no CUDA GPU visible (GPU_VALIDATE_TINY=1 tests this script on the CPU)")
from importlib.metadata import PackageNotFoundError, version
for name in ("click", "rich", "matplotlib", "numpy"):
    try:
        importlib.import_module(name)
        try:
            print(f"{name} {version(name)}")
        except PackageNotFoundError:
            print(f"{name} present")
    except ImportError:
        print(f"{name} MISSING" + (" (required)" if name == "click" else " (optional)"))
import shapecalc.cli.train  # noqa: F401  (fails here, clearly, if a dependency is missing)
PYEOF

if [ "$TINY" = "1" ]; then
  TRAIN_ARGS=(--device cpu --epochs 2 --limit-train 256 --limit-test 128 --image-size 65 --lr 0.05)
  BENCH_ARGS=(--device cpu --steps 2 --warmup 1 --image-size 65 --batch-size 32 --workers 2)
  TRAIN_LIMIT=900 BENCH_LIMIT=600
else
  TRAIN_ARGS=(--device cuda)  # the defaults: alexnet, 10 epochs, 224x224, batch 128, lr 0.01
  BENCH_ARGS=(--device cuda --steps 60 --warmup 10)
  TRAIN_LIMIT=390 BENCH_LIMIT=150  # seconds: keeps the whole script under 8 minutes
fi

echo "== training: shapecalc train ${TRAIN_ARGS[*]}"
t0=$(date +%s)
timeout "$TRAIN_LIMIT" "$PY" -m shapecalc train --data-dir "$DATA" --out "$OUT/train" "${TRAIN_ARGS[@]}" 2>&1 | tee "$OUT/train.log"
train_s=$(( $(date +%s) - t0 ))

echo "== throughput: benchmarks/train_throughput.py ${BENCH_ARGS[*]}"
t0=$(date +%s)
timeout "$BENCH_LIMIT" "$PY" benchmarks/train_throughput.py --data-dir "$DATA" --json "$OUT/throughput.json" "${BENCH_ARGS[@]}" \
  2>&1 | tee "$OUT/throughput.log"
bench_s=$(( $(date +%s) - t0 ))

echo "== summary"
"$PY" - "$OUT" "$TINY" "$train_s" "$bench_s" "$(( $(date +%s) - start ))" <<'PYEOF'
import json, sys, datetime
from pathlib import Path
out, tiny, train_s, bench_s, total_s = Path(sys.argv[1]), sys.argv[2] == "1", *map(int, sys.argv[3:])
metrics = json.loads((out / "train" / "metrics.json").read_text())
bench = json.loads((out / "throughput.json").read_text())
s = metrics["summary"]
acc_ok = s["final_test_acc"] >= 0.883
ratio_ok = bench["ratio"] >= 5.0
epochs = metrics["epochs"]
wall = metrics.get("wall_seconds")
wall_ok = wall is not None and wall <= 35.0
later = sorted(e["seconds"] for e in epochs[1:])
median_later = later[len(later) // 2] if later else None
epoch1_ratio = epochs[0]["seconds"] / median_later if median_later else None
epoch1_ok = epoch1_ratio is not None and epoch1_ratio <= 1.5
summary = {
    "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "tiny": tiny, "device": metrics["environment"].get("gpu") or metrics["environment"]["device"],
    "torch": metrics["environment"]["torch"], "epochs": s["epochs"],
    "image_size": metrics["config"]["image_size"], "batch_size": metrics["config"]["batch_size"],
    "final_test_acc": s["final_test_acc"], "final_train_acc": s["final_train_acc"],
    "final_loss": s["final_loss"], "train_images_per_s": s["images_per_s"],
    "per_epoch": [{k: e[k] for k in ("epoch", "loss", "train_acc", "test_acc", "images_per_s", "seconds")}
                  for e in metrics["epochs"]],
    "pipeline_images_per_s": bench["pipeline_images_per_s"],
    "baseline_images_per_s": bench["baseline_images_per_s"], "ratio": bench["ratio"],
    "train_wall_seconds": wall, "epoch1_seconds": epochs[0]["seconds"],
    "median_later_epoch_seconds": median_later, "epoch1_ratio": epoch1_ratio,
    "targets": {"test_acc>=0.883": acc_ok, "train_wall<=35s": wall_ok,
                "epoch1<=1.5x_later": epoch1_ok, "ratio>=5": ratio_ok},
    "seconds": {"train": train_s, "benchmark": bench_s, "total": total_s},
}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
flag = lambda ok: "PASS" if ok else ("FAIL" if not tiny else "n/a (tiny run)")
print(f"device: {summary['device']}, torch {summary['torch']}, {summary['date_utc']}")
print(f"test accuracy after {s['epochs']} epochs at {summary['image_size']}x{summary['image_size']}: "
      f"{s['final_test_acc']:.4f} (target >= 0.883: {flag(acc_ok)})")
print(f"training images/s (epochs 2..{s['epochs']}): {s['images_per_s']:,.0f}")
print(f"throughput: pipeline {bench['pipeline_images_per_s']:,.0f} images/s vs d2l loop "
      f"{bench['baseline_images_per_s']:,.0f} images/s = {bench['ratio']:.2f}x (target >= 5x: {flag(ratio_ok)})")
print(f"training wall time (epoch 1 to the last evaluation): "
      f"{'?' if wall is None else f'{wall:.1f} s'} (target <= 35 s: {flag(wall_ok)})")
if epoch1_ratio is not None:
    print(f"epoch 1: {epochs[0]['seconds']:.2f} s, later epochs (median): {median_later:.2f} s = "
          f"{epoch1_ratio:.2f}x (target <= 1.5x: {flag(epoch1_ok)})")
print(f"process wall time: training {train_s} s, benchmark {bench_s} s, total {total_s} s")
print(f"summary: {out / 'summary.json'}")
sys.exit(0 if tiny or (acc_ok and ratio_ok and wall_ok and epoch1_ok) else 1)
PYEOF
