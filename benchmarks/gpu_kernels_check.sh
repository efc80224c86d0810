#!/usr/bin/env bash
# GPU check of the Pallas attention kernels: the compiled-GPU tests, then the benchmark.
#
# Run from the repository root on a machine with a GPU and jax[cuda] installed (no
# network needed):
#     bash benchmarks/gpu_kernels_check.sh
# With OUT set, the benchmark table goes to $OUT/attention.txt and the logs beside it.
# Each step has its own timeout and a failing step does not stop the next one; the
# whole script is sized to finish in about 6 minutes on an H100/H200 (the 15 GPU tests
# took 195 s on an H200, mostly Triton compiles).
set -x
set -o pipefail

PYTHON=${PYTHON:-python3}
OUT=${OUT:-}
LOGS=${OUT:-/tmp/mmjax_gpu_check}
mkdir -p "$LOGS"
export JAX_PLATFORMS=${JAX_PLATFORMS:-cuda}   # tests/conftest.py defaults to cpu otherwise
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0

timeout 30 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
timeout 60 "$PYTHON" -c "import jax; print(jax.__version__, jax.devices())" || status=1

# mmjax imports ml_collections; a GPU image without it gets the wheels carried beside
# the repository (benchmarks/gpu_suite.sh installs them).
"$PYTHON" -c "import ml_collections" || { echo "ml_collections missing: run benchmarks/gpu_suite.sh"; status=1; }

# 1. Kernel tests on the real GPU lowering (Triton, no interpret mode) and cuDNN.
timeout 240 "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider tests/test_kernels_gpu.py 2>&1 \
  | tee "$LOGS/gpu_tests.log" || status=1

# 2. Benchmark: pallas, cudnn and xla side by side (a modest sweep; --budget-s stops
#    starting new cases, timeout is the hard stop; the table is written as it grows).
timeout 120 "$PYTHON" benchmarks/attention.py --no-small \
  --head-dims 64 128 --lengths 1024 4096 8192 --masks dense pad50 blockcausal \
  --reps 5 --budget-s 75 --out "$LOGS/attention.txt" 2>&1 | tee "$LOGS/attention_log.txt" || status=1

echo "gpu_kernels_check: exit status $status (0 = every step passed)"
exit $status
