#!/usr/bin/env bash
# Everything mmjax checks on a GPU, in one run of under 10 minutes, on a GPU machine
# without network access. From the repository root:
#
#   OUT=/tmp/gpu bash benchmarks/gpu_suite.sh      # $OUT/report.md is the one table
#
# 0. installs the wheels carried in .whl/ (grain, array_record, ml_collections,
#    portpicker: what a GPU image with jax[cuda], flax, optax, orbax, chex, torch and
#    transformers lacks) into /tmp/site; mmjax itself runs from this checkout;
# 1. MAE ViT-B/16 and ViT-L/16 at 224, mask 0.75, bf16: the measured bf16 matrix rate,
#    images/s and MFU at the largest batch that fits, a jax.profiler trace of 3 steps;
# 2. HF transformers' ViTMAEForPreTraining at the same batches: eager, and torch.compile
#    for ViT-B;
# 3. attention: pallas tile settings tuned at head dim 128, then pallas vs cudnn vs xla,
#    forward and forward+backward, head dims 128 and 64, lengths 256 to 8192, masks
#    dense / ones / pad50 / halfblocks (the target lengths first; the sweep stops
#    starting new cases when its budget is spent);
# 4. the tests marked `gpu` (compiled kernels, cuDNN at odd lengths, bf16 numerics, MAE
#    steps with checkpoint and resume), on 4 xdist workers;
# 5. $OUT/report.md: the tables, the targets, the trace summaries, the test result.
#
# Each step has its own time limit inside the overall DEADLINE_S; a failing step does
# not stop the next; results are written as they come.
set -o pipefail
OUT=${OUT:-/tmp/mmjax_gpu}
DEADLINE_S=${DEADLINE_S:-580}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 JAX_PLATFORMS=${JAX_PLATFORMS:-cuda}
status=0

if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# limit CAP: seconds for the next step, at most CAP, leaving RESERVE for the later steps.
limit() { local left=$((DEADLINE_S - SECONDS - ${2:-0})); echo $((left < $1 ? (left > 5 ? left : 5) : $1)); }
step() { echo "== $1 (t=${SECONDS}s)"; }

step setup
timeout 30 nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT/device.txt"
python3 -c "import jax, flax, optax, orbax.checkpoint, grain, ml_collections, torch, transformers as t
print('jax', jax.__version__, jax.devices(), '| torch', torch.__version__, '| transformers', t.__version__)" \
  | tee -a "$OUT/device.txt" || status=1

# SMOKE=1: tiny shapes, to check the script itself on a machine without a GPU.
if [ "${SMOKE:-0}" = 1 ]; then
  mae=(--sizes tiny --batch 2 --image-size 32 --steps 2 --peak-n 256 --memory-gib 2)
  compiled_size=tiny
  attn=(--small --lengths 128 --tune-length 128)
else
  mae=(--sizes base,large --batch 1024,512)
  compiled_size=base
  attn=(--no-small --lengths 2048 4096 8192 256 1024 --tune-length 4096)
fi

step "MAE throughput and MFU (jax)"
XLA_PYTHON_CLIENT_MEM_FRACTION=0.92 timeout "$(limit 170 400)" python3 benchmarks/mae_mfu.py jax "${mae[@]}" \
  --json "$OUT/mfu.jsonl" --trace-dir /tmp/mmjax_traces 2>&1 | tee "$OUT/mfu_jax.log" || status=1

step "MAE throughput (HF torch)"
JAX_PLATFORMS=cpu timeout "$(limit 120 280)" python3 benchmarks/mae_mfu.py torch "${mae[@]}" --compile "$compiled_size" \
  --json "$OUT/mfu.jsonl" 2>&1 | tee "$OUT/mfu_torch.log" || status=1

step attention
budget=$(limit 90 190)
timeout "$budget" python3 benchmarks/attention.py --tune --tune-head-dims 128 "${attn[@]}" --head-dims 128 64 \
  --masks dense ones pad50 halfblocks --only xla=dense cudnn=dense,halfblocks --reps 10 \
  --budget-s $((budget - 15)) --out "$OUT/attention.txt" --json "$OUT/attention.jsonl" > "$OUT/attention.log" 2>&1 \
  || status=1

step "gpu tests"
# The tests check values, not speed: no GEMM autotuning at compile time (it runs on the
# one GPU the workers share; the tests ran out of time in the 2026-11-27 calls).
XLA_FLAGS=--xla_gpu_autotune_level=0 XLA_PYTHON_CLIENT_PREALLOCATE=false timeout "$(limit 240 8)" \
  python3 -m pytest -q -m gpu -n 4 \
  -p no:cacheprovider -p no:benchmark tests/test_kernels_gpu.py tests/test_train_gpu.py 2>&1 | tee "$OUT/gpu_tests.log" \
  || status=1

step report
{
  echo "# mmjax GPU suite, $(date -u +%Y-%m-%d)"
  echo
  echo '```'
  cat "$OUT/device.txt"
  echo '```'
  echo
  echo "## MAE pretraining step (224/16, mask 0.75, bf16)"
  echo
  python3 benchmarks/mae_mfu.py report --json "$OUT/mfu.jsonl"
  echo
  echo "## Attention targets (bf16 forward)"
  echo
  python3 benchmarks/attention.py --targets "$OUT/attention.jsonl"
  echo
  echo "## Attention"
  echo
  echo '```'
  cat "$OUT/attention.txt"
  echo '```'
  echo
  echo "## Where the MAE step's time goes (jax.profiler, 3 steps)"
  echo
  python3 benchmarks/trace_summary.py /tmp/mmjax_traces/* --steps 3 --top 12
  echo
  echo "## GPU tests"
  echo
  echo '```'
  tail -n 15 "$OUT/gpu_tests.log"
  echo '```'
} > "$OUT/report.md" 2>&1
tar czf "$OUT/traces.tgz" --exclude='*.xplane.pb' -C /tmp mmjax_traces 2>/dev/null
cat "$OUT/report.md"
echo "gpu_suite: exit status $status (0 = every step passed) after ${SECONDS}s"
exit $status
