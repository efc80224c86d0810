#!/usr/bin/env bash
# Create a TPU VM slice, or a queued resource (QUEUED=1, optionally SPOT=1).
#   TPU_NAME=mae ZONE=us-central2-b ACCELERATOR_TYPE=v4-32 tpu_scripts/create.sh
# Optional: PROJECT, RUNTIME_VERSION (default tpu-ubuntu2204-base), QUEUED=1, SPOT=1, DRY_RUN=1.
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "$0")/common.sh"
require TPU_NAME ZONE ACCELERATOR_TYPE
RUNTIME_VERSION="${RUNTIME_VERSION:-tpu-ubuntu2204-base}"

if [[ "${QUEUED:-0}" == "1" ]]; then
  run gcloud compute tpus queued-resources create "${TPU_NAME}" --node-id "${TPU_NAME}" \
    --zone "${ZONE}" ${PROJECT:+--project "${PROJECT}"} \
    --accelerator-type "${ACCELERATOR_TYPE}" --runtime-version "${RUNTIME_VERSION}" \
    ${SPOT:+--spot}
  echo "queued; watch it with: gcloud compute tpus queued-resources describe ${TPU_NAME} --zone ${ZONE}"
else
  run gcloud compute tpus tpu-vm create "${TPU_NAME}" --zone "${ZONE}" ${PROJECT:+--project "${PROJECT}"} \
    --accelerator-type "${ACCELERATOR_TYPE}" --version "${RUNTIME_VERSION}" \
    ${SPOT:+--spot}
fi
