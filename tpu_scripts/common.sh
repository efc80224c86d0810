#!/usr/bin/env bash
# Shared helpers for tpu_scripts/*.sh: sourced, not run.
set -euo pipefail

# require NAME...: fail with a clear message when a variable is unset or empty.
require() {
  local name
  for name in "$@"; do
    if [[ -z "${!name:-}" ]]; then
      echo "error: set ${name} (see README.md, 'Running on a pod')" >&2
      exit 2
    fi
  done
}

# run CMD...: print the command, then run it (DRY_RUN=1 only prints).
run() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
  if [[ "${DRY_RUN:-0}" != "1" ]]; then
    "$@"
  fi
}

# tpu_ssh COMMAND: run COMMAND on every worker of ${TPU_NAME} (WORKER=all by default).
tpu_ssh() {
  run gcloud compute tpus tpu-vm ssh "${TPU_NAME}" --zone "${ZONE}" ${PROJECT:+--project "${PROJECT}"} \
    --worker="${WORKER:-all}" --command "$1"
}
