#!/usr/bin/env bash
# Install jax[tpu] and mmjax (a git checkout, so experiments/ is there) on every worker.
#   TPU_NAME=mae ZONE=us-central2-b MMJAX_REPO=https://github.com/you/mmjax tpu_scripts/setup.sh
# Optional: MMJAX_REF (default main), PROJECT, DRY_RUN=1.
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "$0")/common.sh"
require TPU_NAME ZONE MMJAX_REPO
MMJAX_REF="${MMJAX_REF:-main}"

tpu_ssh "set -e
  python3 -m pip install -U pip
  python3 -m pip install -U 'jax[tpu]'
  rm -rf ~/mmjax && git clone ${MMJAX_REPO:?} ~/mmjax && git -C ~/mmjax checkout ${MMJAX_REF}
  python3 -m pip install -e ~/mmjax
  python3 -c 'import jax; print(jax.process_index(), jax.device_count())'"
