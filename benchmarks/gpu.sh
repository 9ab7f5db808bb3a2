#!/usr/bin/env bash
# Run the performance benchmarks on a GPU, with GPU-sized problems; JSON (+ markdown) into one results directory.
#
#   benchmarks/gpu.sh [RESULTS_DIR]        # default benchmarks/results/gpu_<host>_<date>
#
# Needs jax with CUDA (pip install -U "jax[cuda12]") in the Python found as $PYTHON (default: python). Exits with
# status 2 and a message when JAX sees no GPU. What it runs:
#   1. peers.py      the issue's problem as on CPU (1024 + 256 points, tanh 4x64), float32 and float64, so the
#                    ratios compare with the CPU table; then a GPU-sized variant (16384 + 4096 points, 4x128)
#   2. large_p.py    matrix-free LM memory at widths 128/256/512 (P up to ~0.8M) with 4096 + 1024 points, and the
#                    loss-vs-time curves at width 256
#   3. data-parallel sanity: tests/test_sharding.py (forced host devices, CPU) and, with 2+ GPUs, the sharded
#                    vs single-device worker on the real devices
# Everything writes into $OUT; nothing is uploaded. Runs take roughly 30-60 minutes on one H100.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PYTHON="${PYTHON:-python}"
OUT="${1:-$HERE/results/gpu_$(hostname -s)_$(date +%Y%m%d_%H%M%S)}"
mkdir -p "$OUT"

NGPU="$("$PYTHON" - <<'EOF'
import jax
try:
    print(len(jax.devices("gpu")))
except RuntimeError:
    print(0)
EOF
)"
if [[ "$NGPU" == "0" ]]; then
    echo "gpu.sh: JAX sees no GPU (jax.devices('gpu') is empty); install jax[cuda12] or run the CPU benchmarks" >&2
    exit 2
fi
echo "gpu.sh: $NGPU GPU(s); results in $OUT"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true; "$PYTHON" -c "import jax; print(jax.__version__, jax.devices())"; } > "$OUT/devices.txt" 2>&1

# XLA preallocates 75% of GPU memory by default, which hides the real footprint of the memory benchmark
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_PLATFORMS=cuda,cpu

cd "$ROOT"
echo "== peers: the issue's problem (1024 + 256 points, 4x64)"
"$PYTHON" benchmarks/peers.py --gpu --repeats 7 --chunk 500 --budget-s 30 --out "$OUT/peers.json"

echo "== peers: GPU-sized variant (16384 + 4096 points, 4x128)"
"$PYTHON" benchmarks/peers.py --gpu --interior 16384 --boundary 4096 --width 128 --repeats 7 --chunk 500 \
    --budget-s 60 --out "$OUT/peers_large.json"

echo "== large_p: matrix-free LM memory and loss-vs-time"
"$PYTHON" benchmarks/large_p.py --widths 128 256 512 --width 256 --interior 4096 --boundary 1024 \
    --cg-max-steps 50 --budget-s 300 --eval-lm 5 --out "$OUT/large_p.json"

echo "== data parallelism: forced host devices (CPU) test"
JAX_PLATFORMS=cpu "$PYTHON" -m pytest tests/test_sharding.py -q | tee "$OUT/test_sharding.txt"
if [[ "$NGPU" -ge 2 ]]; then
    echo "== data parallelism on $NGPU GPUs (sharded vs single device, float64)"
    # the worker splits points over 4 devices: use the first 4 GPUs (needs >= 4; skipped otherwise)
    if [[ "$NGPU" -ge 4 ]]; then
        JAX_ENABLE_X64=1 "$PYTHON" tests/_sharding_worker.py > "$OUT/sharding_gpu.json"
    else
        echo "fewer than 4 GPUs: the 4-way sharding worker is skipped" | tee "$OUT/sharding_gpu.txt"
    fi
fi
echo "gpu.sh: done; results in $OUT"
