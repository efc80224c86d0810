"""Saving a replicated state in one process: orbax's replica-parallel default against one write per array.

A state of 180 small float32 arrays, replicated over 8 simulated CPU devices, saved three times
by a `CheckpointManager` (synchronously, so the time is the whole save) with orbax's registered
array handler as it comes (`orbax default`), then as `mmjax.train.checkpoint` registers it for a
single process (`mmjax`); the restored values are checked equal to the saved ones. Each setting
runs in its own process, so the first save pays its compiles in both rows.

    python benchmarks/checkpoint_save.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

ARRAYS, DEVICES, SAVES = 180, 8, 3


def one_setting(setting: str) -> list[float]:
    """Seconds of each save, in this process, with `setting` ('orbax' or 'mmjax')."""
    import jax
    import numpy as np
    import orbax.checkpoint as ocp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from mmjax.train import checkpoint

    if setting == "mmjax":
        checkpoint._write_each_replicated_array_once()
    mesh = jax.make_mesh((DEVICES,), ("data",))
    rng = np.random.default_rng(0)
    shapes = [(i % 7 + 1, 16 * (i % 5 + 1)) for i in range(ARRAYS)]
    state = {
        f"p{i}": jax.device_put(rng.normal(size=s).astype(np.float32), NamedSharding(mesh, P()))
        for i, s in enumerate(shapes)
    }
    times = []
    with tempfile.TemporaryDirectory() as root:
        options = ocp.CheckpointManagerOptions(enable_async_checkpointing=False)
        manager = ocp.CheckpointManager(os.path.join(root, "checkpoints"), options=options)
        for step in range(SAVES):
            start = time.perf_counter()
            manager.save(step, args=ocp.args.StandardSave(state))
            manager.wait_until_finished()
            times.append(time.perf_counter() - start)
        restored = manager.restore(SAVES - 1, args=ocp.args.StandardRestore(state))
        assert all(np.array_equal(np.asarray(restored[k]), np.asarray(state[k])) for k in state)
        manager.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setting", choices=("orbax", "mmjax"), help="(internal) run one setting here")
    args = parser.parse_args()
    if args.setting:
        print(" ".join(f"{t:.2f}" for t in one_setting(args.setting)))
        return
    flags = f"--xla_force_host_platform_device_count={DEVICES}"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags}
    print(f"| setting | save 1 (s) | save 2 (s) | save 3 (s) |  ({ARRAYS} arrays on {DEVICES} CPU devices)")
    print("| --- | --- | --- | --- |")
    for setting, name in (("orbax", "orbax default (replica-parallel)"), ("mmjax", "mmjax, one process")):
        out = subprocess.run([sys.executable, __file__, "--setting", setting], env=env, capture_output=True, text=True)
        if out.returncode:
            sys.exit(out.stderr)
        print(f"| {name} | " + " | ".join(out.stdout.split()) + " |")


if __name__ == "__main__":
    main()
