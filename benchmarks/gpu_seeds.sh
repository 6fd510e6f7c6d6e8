#!/usr/bin/env bash
# Issue 14 on the GPU machine, in one run: the Fashion-MNIST CNN recipe (configs/fmnist_cnn.yaml,
# 60 epochs) for more seeds side by side on the one GPU, each followed by its fine-tuning
# (configs/fmnist_cnn_finetune.yaml --init), as models/fmnist_cnn.net was made; and the CUDA tests.
#   1. the first seed starts alone, the others once its first epoch is done (or after 90 s), so
#      that epoch's time is one process's on the GPU;
#   2. the CUDA and Triton-kernel tests run beside the trainings (correctness only);
#   3. every run is stopped (SIGINT: it saves a resumable last.pt) DEADLINE seconds after the
#      start; a run that finished has its weights brought back in $OUT as a slim checkpoint (the
#      exported weights, the weight average, without the optimizer: about 13 MB each, under the
#      device tool's 16 MiB per file), s<seed>_base.pt and s<seed>_tuned.pt, with the epoch lines in
#      gpu_seeds.log; the first seed's recipe run, when the deadline stopped it, comes back whole
#      (optimizer and all, about 51 MB) in 15 MB parts s<seed>_last.pt.part-*: join them with
#      `cat s1_last.pt.part-* > RUN/last.pt` and continue with `tsslbp train fmnist_cnn --seed 1
#      --out RUN --resume` (the device tool returns at most 8 files, 64 MiB in all: with the parts,
#      room is left for one more slim checkpoint, so run one or two seeds).
#
# Prepare once, in the repository root (ignored folders that the device tool carries):
#   echo /.whl/ >> .git/info/exclude; echo /.fmnist/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl nir==1.0.8 hypothesis attrs sortedcontainers
#   mkdir -p .fmnist && cp /usr/share/datasets/fashion-mnist/*.gz .fmnist/
# Then through the device tool once: command "bash benchmarks/gpu_seeds.sh", carry [".whl",
# ".fmnist"], timeout_s a minute above DEADLINE.
# On a CPU machine `DEVICE=cpu EPOCHS=1 TUNE_EPOCHS=1 DATA=DIR DEADLINE=300 bash
# benchmarks/gpu_seeds.sh`, DIR holding a small slice of the four IDX files, checks the script.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=${OUT:-runs/gpu_seeds}
DEVICE=${DEVICE:-cuda}
SEEDS=${SEEDS:-1 2}
DEADLINE=${DEADLINE:-500}
EPOCHS=${EPOCHS:-}
TUNE_EPOCHS=${TUNE_EPOCHS:-}
DATA=${DATA:-.fmnist}
TESTS=${TESTS:-tests/train/test_cuda.py tests/train/test_triton_kernels.py}
PY=${PY:-python3}
WORK=$(mktemp -d)
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
exec > >(tee "$OUT/gpu_seeds.log") 2>&1
START=$SECONDS
# Seconds to the deadline, at least 1 (`timeout 0` would mean no limit).
left() { local s=$((DEADLINE - (SECONDS - START))); echo $((s > 0 ? s : 1)); }

echo "== gpu_seeds $(date -u +%FT%TZ) on $(hostname), seeds $SEEDS, deadline ${DEADLINE} s"
# shellcheck source=benchmarks/device_env.sh
. benchmarks/device_env.sh

# The shipped configs, with the CPU check's overrides (fewer epochs).
config() {  # config NAME EPOCHS -> a YAML path in $WORK
    local src="configs/$1.yaml" dst="$WORK/$1.yaml"
    cp "$src" "$dst"
    [ -n "$2" ] && sed -i "s/^  epochs: .*/  epochs: $2/" "$dst"
    echo "$dst"
}
BASE=$(config fmnist_cnn "$EPOCHS")
TUNE=$(config fmnist_cnn_finetune "$TUNE_EPOCHS")

slim() {  # slim RUN_DIR OUT_FILE: the exported weights of a finished run, without the optimizer
    "$PY" - "$1/last.pt" "$2" <<'EOF'
import os, sys, torch
if not os.path.exists(sys.argv[1]):
    sys.exit(f"{sys.argv[1]}: none (the run saved nothing before the deadline)")
state = torch.load(sys.argv[1], weights_only=True, map_location="cpu")
done = state["epoch"] == state["config"]["Network"]["epochs"] and not state.get("partial")
if not done:
    sys.exit(f"{sys.argv[1]}: stopped after epoch {state['epoch']}: no slim checkpoint")
if state.get("averaged") is not None:
    state["model"] = state["averaged"]
for key in ("optimizer", "averaged", "averaged_steps", "rng_state", "rng_states"):
    state.pop(key, None)
state["slimmed"] = "model = the run's weight average; optimizer dropped (gpu_seeds.sh)"
torch.save(state, sys.argv[2])
print(f"{sys.argv[2]}: epoch {state['epoch']}, final test acc {state['metrics'][-1]['test_acc']:.4f}")
EOF
}

run_seed() {  # run_seed SEED: the recipe, then its fine-tuning, each within the deadline
    local seed=$1 dir="$WORK/s$1"
    timeout -s INT "$(left)" "$PY" -m tsslbp train "$BASE" --seed "$seed" --device "$DEVICE" \
        --data-dir "$DATA" --out "$dir/base" --no-progress --checkpoint-every 600 \
        > "$WORK/s$seed.base.log" 2>&1
    echo "== seed $seed recipe: exit $?"; sed "s/^/[s$seed] /" "$WORK/s$seed.base.log"
    if ! slim "$dir/base" "$OUT/s${seed}_base.pt"; then
        if [ "$seed" = "$first" ] && [ -f "$dir/base/last.pt" ]; then
            split -b 15M "$dir/base/last.pt" "$OUT/s${seed}_last.pt.part-"
            echo "brought back the interrupted run in parts: $(ls "$OUT" | grep -c "s${seed}_last.pt.part-")"
        fi
        return
    fi
    timeout -s INT "$(left)" "$PY" -m tsslbp train "$TUNE" --seed "$seed" --device "$DEVICE" \
        --init "$dir/base/last.pt" --data-dir "$DATA" --out "$dir/tuned" --no-progress \
        --checkpoint-every 600 > "$WORK/s$seed.tuned.log" 2>&1
    echo "== seed $seed fine-tuning: exit $?"; sed "s/^/[s$seed tuned] /" "$WORK/s$seed.tuned.log"
    slim "$dir/tuned" "$OUT/s${seed}_tuned.pt"
}

echo "== 1. trainings on $DEVICE"
set -- $SEEDS
first=$1
run_seed "$1" &
pids=($!)
shift
# The other seeds once the first one's first epoch is logged (its time then is one process's).
for _ in $(seq 90); do
    grep -q "^epoch 1/" "$WORK/s$first.base.log" 2>/dev/null && break
    sleep 1
done
grep "^epoch 1/" "$WORK/s$first.base.log" 2>/dev/null | sed "s/^/[s$first alone] /"
for seed in "$@"; do
    run_seed "$seed" &
    pids+=($!)
done

echo "== 2. tests (CUDA, Triton kernels), beside the trainings"
# shellcheck disable=SC2086  # TESTS is a list of paths
timeout 150 "$PY" -m pytest -q -p no:cacheprovider $TESTS 2>&1 | tee "$OUT/pytest.log" | tail -n 15
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv

echo "== 3. waiting for the trainings (stopped $(left) s from now at the latest)"
wait "${pids[@]}"
rm -rf "$WORK"
echo "== done $(date -u +%FT%TZ), $((SECONDS - START)) s"
