"""One process of a multi-process test run: `python -m tests.multiprocess_worker OUT WORKDIR STEPS MESH [CKPT_EVERY]`.

The process count, id and coordinator come from MMJAX_* environment variables (as on a
cluster); MESH is `data=2,fsdp=4`. Process 0 writes `OUT/params.npz` (the final parameters,
gathered from every process) and `OUT/history.json` (the logged losses).
"""

import json
import os
import sys

import jax
import numpy as np
from jax.experimental import multihost_utils

from mmjax.train import Preempted, train
from tests.helpers import load_experiment


def tiny_config(steps: int, mesh: str, checkpoint_every: int = 3):
    config = load_experiment("mae_digits", f"steps={steps}")
    config.train.update(batch_size=16, log_every=1, checkpoint_every=checkpoint_every, tensorboard=False)
    config.eval.protocols = ()
    config.mesh.update({k: int(v) for k, v in (item.split("=") for item in mesh.split(","))})
    return config


def main(out: str, workdir: str, steps: str, mesh: str, checkpoint_every: str = "3") -> None:
    try:
        result = train(tiny_config(int(steps), mesh, int(checkpoint_every)), workdir)
    except Preempted as stop:
        print(f"process {jax.process_index()} preempted at {stop.step}", flush=True)
        raise
    params = multihost_utils.process_allgather(result.state.params, tiled=True)
    flat = {jax.tree_util.keystr(path): np.asarray(x) for path, x in jax.tree_util.tree_flatten_with_path(params)[0]}
    if jax.process_index() == 0:
        os.makedirs(out, exist_ok=True)
        np.savez(os.path.join(out, "params.npz"), **flat)
        with open(os.path.join(out, "history.json"), "w") as f:
            json.dump(result.history, f)
    print(f"process {jax.process_index()} of {jax.process_count()} done at step {result.step}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
