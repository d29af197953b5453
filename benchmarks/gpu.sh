#!/usr/bin/env bash
# One call on a GPU machine, under 10 minutes (timeouts: 20 + 120 + 200 + 170 + 80 s): training speed (ours vs plain, with bf16 autocast,
# channels_last and torch.compile), MFU against a bf16 matmul measured in the same run, the scaling
# table, and the CUDA-relevant tests. Results go to $OUT (or benchmarks/gpu_results/ when unset).
#
#   bash benchmarks/gpu.sh                 # from the repository root, with the venv's python on PATH
#   PYTHON=/path/to/python OUT=/tmp/r bash benchmarks/gpu.sh
#
# Each part runs under its own timeout and the script goes on after a failure, so one slow part
# cannot eat the others' time; the exit status is non-zero when any part failed.
set -uo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python}"
DEST="${OUT:-benchmarks/gpu_results}"
mkdir -p "$DEST"
status=0

part() {  # part NAME SECONDS CMD... : run CMD under a timeout, tee its output to $DEST/NAME.txt
    local name="$1" limit="$2"
    shift 2
    echo "== $name (limit ${limit}s): $*" | tee "$DEST/$name.txt"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$DEST/$name.txt"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - start))s" | tee -a "$DEST/$name.txt"
    if [ "$rc" -ne 0 ]; then status=1; fi
}

if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu.sh: no CUDA device visible to $PY; nothing to measure" >&2
    exit 2
fi

part environment 20 bash -c "nvidia-smi || true; $PY -c 'import torch, ganaug; \
print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.get_device_name(0)); \
print(\"ganaug\", ganaug.__version__)'"

# 1. Eager fast path (bf16 autocast + channels_last) vs plain fp32 NCHW, both archs at 32 and 64 px.
part train_speed_eager 120 "$PY" benchmarks/train_speed.py --device cuda --precision bf16 \
    --archs dcgan,resnet --sizes 32,64 --batch-sizes 128,256 --repeats 5 --steps 10 --warmup 3 \
    --ceiling-time 1 --json "$DEST/train_speed_eager.json"

# 2. The same with torch.compile (compile time is reported as warm-up); resnet 64 px is the MFU goal.
part train_speed_compile 200 "$PY" benchmarks/train_speed.py --device cuda --precision bf16 --compile \
    --archs resnet --sizes 64 --batch-sizes 256 --repeats 5 --steps 10 --warmup 3 \
    --ceiling-time 1 --json "$DEST/train_speed_compile.json"

# 3. Scaling: img/s and peak CUDA memory at 32/64/128 px x batch 32/128/512 (one process per point).
part scaling 170 "$PY" benchmarks/train_speed.py --scaling --device cuda --precision bf16 \
    --repeats 2 --steps 3 --warmup 1 --json "$DEST/scaling.json"

# 4. Tests that exercise CUDA: the fast-path tests (one is CUDA-only) and the training engine.
part tests 80 "$PY" -m pytest -q -x tests/test_speed_paths.py \
    "tests/test_train.py::test_each_architecture_trains_and_writes_a_complete_run_dir" \
    "tests/test_train.py::test_same_seed_same_losses"

echo "results in $DEST (exit $status)"
exit "$status"
