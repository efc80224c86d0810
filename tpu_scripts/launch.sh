#!/usr/bin/env bash
# Start the same training command on every worker; each writes ~/mmjax.log.
#   TPU_NAME=mae ZONE=us-central2-b CONFIG=experiments/mae_vit_imagenet.py:size=large \
#     WORKDIR=gs://bucket/mae_l tpu_scripts/launch.sh --config.mesh.fsdp=8
# Extra arguments are config overrides. The run uses jax.distributed auto-detection
# (config.distributed.enabled=True); it resumes from WORKDIR when a checkpoint is there,
# and restarts itself after a preemption exit (status 42) while the VM survives.
# Optional: PROJECT, DRY_RUN=1.
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "$0")/common.sh"
require TPU_NAME ZONE CONFIG WORKDIR

overrides=""
for arg in "$@"; do
  overrides+=" $(printf '%q' "${arg}")"
done
train="python3 -m mmjax train --config ${CONFIG} --workdir ${WORKDIR} --config.distributed.enabled=True${overrides}"
# Status 42 = preempted after a checkpoint: run the same command again to resume.
loop="cd ~/mmjax && while true; do ${train}; rc=\$?; [ \$rc -eq 42 ] || break; echo resuming; done; echo exit \$rc"
tpu_ssh "nohup bash -c '${loop}' > ~/mmjax.log 2>&1 &"
echo "started; follow it with: TPU_NAME=${TPU_NAME} ZONE=${ZONE} tpu_scripts/tail.sh"
