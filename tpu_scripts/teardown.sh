#!/usr/bin/env bash
# Delete the TPU VM (or the queued resource with QUEUED=1). The WORKDIR bucket is kept.
#   TPU_NAME=mae ZONE=us-central2-b tpu_scripts/teardown.sh
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "$0")/common.sh"
require TPU_NAME ZONE
if [[ "${QUEUED:-0}" == "1" ]]; then
  run gcloud compute tpus queued-resources delete "${TPU_NAME}" --zone "${ZONE}" ${PROJECT:+--project "${PROJECT}"} \
    --force --quiet
else
  run gcloud compute tpus tpu-vm delete "${TPU_NAME}" --zone "${ZONE}" ${PROJECT:+--project "${PROJECT}"} --quiet
fi
