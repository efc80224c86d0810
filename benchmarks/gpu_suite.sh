#!/usr/bin/env bash
# Everything mmjax checks on a GPU, in one run (a GPU machine without network access).
#
#   bash benchmarks/gpu_suite.sh            # from the repository root; results under $OUT
#
# 0. installs the wheels carried in .whl/ (grain, array_record, ml_collections, portpicker:
#    what the GPU image lacks) into /tmp/site;
# 1. the Pallas kernel check: GPU-only tests, then the attention benchmark table;
# 2. MAE step timings at ViT-B/16, bf16: sparse vs dense encoder, mmjax vs HF torch;
# 3. a short MAE training run on the GPU, killed by nothing, then resumed from its checkpoint.
# Each step has its own timeout; a failing step does not stop the next.
set -x
set -o pipefail
OUT=${OUT:-/tmp/mmjax_gpu}
export OUT
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 JAX_PLATFORMS=cuda
status=0

if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import jax, flax, optax, orbax.checkpoint, grain, ml_collections; print('jax', jax.__version__, jax.devices())" \
  || status=1

# 1. Kernels (tests + attention benchmark), about 6 minutes.
timeout 400 bash benchmarks/gpu_kernels_check.sh || status=1

# 2. MAE step timings.
timeout 200 python3 benchmarks/mae_step.py --sizes base --batch 128 --dtype bfloat16 --torch-device cuda \
  --repeats 5 2>&1 | tee "$OUT/mae_step.txt" || status=1

# 3. Train on the bundled digits, then resume the same run for more steps.
run=/tmp/mmjax_gpu_run
rm -rf "$run"
common=(--config experiments/mae_digits.py --workdir "$run" --config.train.checkpoint_every=100
  --config.eval.probe_steps=200 --config.train.tensorboard=False)
timeout 120 python3 -m mmjax train "${common[@]}" --config.train.steps=300 2>&1 | tee "$OUT/train.txt" || status=1
timeout 120 python3 -m mmjax train "${common[@]}" --config.train.steps=400 2>&1 | tee -a "$OUT/train.txt" || status=1
grep -q "resumed from step 300" "$OUT/train.txt" || status=1

echo "gpu_suite: exit status $status (0 = every step passed)"
exit $status
