#!/usr/bin/env bash
# The GPU device check of issue 13, in one run (each step has its own time limit; 8 minutes at most):
#   1. the CUDA tests (CUDA step vs CPU step, training on CUDA, the Triton kernels compiled for the
#      GPU against the numba CPU kernels);
#   2. the GPU throughput table: `tsslbp bench --suite gpu` (tsslbp's Triton kernels, its torch
#      ops, snnTorch, SpikingJelly, norse; batch 64, T = 5);
#   3. a Fashion-MNIST CNN training on the GPU (batch 64, T = 5), as many epochs as EPOCHS allows
#      within TRAIN_SECONDS, with the time per epoch; or, when a CPU run is carried in $RESUME_DIR
#      (its last.pt and its YAML config), that run continued on the GPU with --resume for up to
#      TRAIN_SECONDS, its last.pt brought back in $OUT (issue 14's CNN: resume it anywhere after);
#   4. the DDP tests (gloo, CPU) on that machine's stack (Python 3.12, torch 2.11, numpy 2, no lava).
#
# Prepare once, in the repository root of the checkout the device tool sends (ignored folders):
#   echo /.whl/ >> .git/info/exclude; echo /.fmnist/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl snntorch==1.0.0 spikingjelly==2.0.0 loguru==0.7.3 \
#       nirtorch==2.6 nir hypothesis attrs sortedcontainers
#   python3 -m pip wheel --no-deps -w .whl norse==1.1.0     # norse ships as a source archive
#   mkdir -p .fmnist && cp /usr/share/datasets/fashion-mnist/*.gz .fmnist/
#   # optional, to finish a CPU training run there (about 14 MB):
#   echo /.cnnrun/ >> .git/info/exclude; mkdir -p .cnnrun
#   cp runs/cnn/r2/last.pt runs/cnn/fmnist_cnn_r2.yaml .cnnrun/
# Then run it through the device tool once: command "bash benchmarks/gpu_check.sh", carry [".whl",
# ".fmnist"] (and ".cnnrun"), timeout_s 580; $OUT gets gpu_check.log, pytest*.log,
# bench_results.md/.json, fmnist_cnn_metrics.json (and the continued run's last.pt).
# On a CPU machine `DEVICE=cpu EPOCHS=1 bash benchmarks/gpu_check.sh` runs the same steps (the CUDA
# tests skip, the gpu suite reports no device) to check the script itself.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=${OUT:-runs/gpu_check}
DEVICE=${DEVICE:-cuda}
EPOCHS=${EPOCHS:-20}
TRAIN_SECONDS=${TRAIN_SECONDS:-120}
DATA=${DATA:-.fmnist}
RESUME_DIR=${RESUME_DIR:-.cnnrun}
TESTS=${TESTS:-tests/train/test_cuda.py tests/train/test_triton_kernels.py}
DDP_TESTS=${DDP_TESTS:-tests/train/test_distributed.py}
PY=${PY:-python3}
WORK=$(mktemp -d)
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
exec > >(tee "$OUT/gpu_check.log") 2>&1

echo "== gpu_check $(date -u +%FT%TZ) on $(hostname)"
# shellcheck source=benchmarks/device_env.sh
. benchmarks/device_env.sh

echo "== 1. tests (CUDA, Triton kernels)"
# shellcheck disable=SC2086  # TESTS is a list of paths
timeout 120 "$PY" -m pytest -q -p no:cacheprovider $TESTS 2>&1 | tee "$OUT/pytest.log" | tail -25

echo "== 2. training-step throughput (tsslbp bench --suite gpu)"
timeout 120 "$PY" -m tsslbp bench --suite gpu --out "$WORK/bench" | tail -20
cp "$WORK/bench/results.md" "$OUT/bench_results.md" 2>/dev/null
cp "$WORK/bench/results.json" "$OUT/bench_results.json" 2>/dev/null

if [ -f "$RESUME_DIR/last.pt" ] && compgen -G "$RESUME_DIR/*.yaml" >/dev/null; then
    CONFIG=$(compgen -G "$RESUME_DIR/*.yaml" | head -1)
    echo "== 3. the carried run $CONFIG continued on $DEVICE (--resume, at most ${TRAIN_SECONDS} s)"
    mkdir -p "$WORK/fmnist" && cp "$RESUME_DIR/last.pt" "$WORK/fmnist/"
    # SIGINT after TRAIN_SECONDS: the run stops after the current batch and saves a resumable last.pt.
    timeout -s INT "$TRAIN_SECONDS" "$PY" -m tsslbp train "$CONFIG" --resume \
        --device "$DEVICE" --data-dir "$DATA" --out "$WORK/fmnist" --no-progress
    cp "$WORK/fmnist/last.pt" "$OUT/fmnist_cnn_last.pt"
else
    echo "== 3. Fashion-MNIST CNN on $DEVICE, batch 64, T = 5 (at most $EPOCHS epochs, ${TRAIN_SECONDS} s)"
    sed 's/^  batch_size: .*/  batch_size: 64/' configs/fmnist_cnn.yaml > "$WORK/fmnist_cnn_b64.yaml"
    # SIGINT after TRAIN_SECONDS: the run stops after the current batch and keeps what it finished.
    timeout -s INT "$TRAIN_SECONDS" "$PY" -m tsslbp train "$WORK/fmnist_cnn_b64.yaml" \
        --device "$DEVICE" --data-dir "$DATA" --epochs "$EPOCHS" --out "$WORK/fmnist" --no-progress
fi
"$PY" - "$WORK/fmnist" "$OUT" <<'EOF'
import json, sys, torch
from pathlib import Path
run, out = Path(sys.argv[1]), Path(sys.argv[2])
if not (run / "last.pt").is_file():
    sys.exit("no checkpoint: the training did not finish an epoch")
state = torch.load(run / "last.pt", weights_only=True, map_location="cpu")
epochs = state["metrics"]
(out / "fmnist_cnn_metrics.json").write_text(json.dumps(epochs, indent=2) + "\n")
for m in epochs:
    print(f"epoch {m['epoch']}: {m['seconds']:.1f} s ({60000 / m['seconds']:,.0f} samples/s incl. test),"
          f" test acc {100 * m['test_acc']:.2f}%")
EOF
echo "== 4. DDP tests (gloo, CPU) on this machine's stack"
# shellcheck disable=SC2086
timeout 150 "$PY" -m pytest -q -p no:cacheprovider $DDP_TESTS 2>&1 | tee "$OUT/pytest_ddp.log" | tail -8
rm -rf "$WORK"
echo "== done $(date -u +%FT%TZ)"
