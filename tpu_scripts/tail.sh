#!/usr/bin/env bash
# Follow ~/mmjax.log of one worker (WORKER=0 by default: process 0 logs the metrics).
#   TPU_NAME=mae ZONE=us-central2-b tpu_scripts/tail.sh
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "$0")/common.sh"
require TPU_NAME ZONE
WORKER="${WORKER:-0}" tpu_ssh "tail -n 100 -f ~/mmjax.log"
