"""Per-device memory of the MAE update step, from the compiled step's memory analysis.

Nothing is allocated or run: the step is lowered from shapes and compiled for 8 simulated
CPU devices, and XLA's buffer assignment reports, per device,

- `state`: arguments minus the batch, i.e. parameters + AdamW moments (+ step, rng);
  with FSDP this should fall about as 1/fsdp;
- `temp`: everything else the step holds while it runs (activations kept for the
  backward pass, gradients, collectives' buffers); remat trades it for recomputation.

Table 1 sweeps fsdp = 1, 2, 4, 8 (data fills the rest) at one image per device.
Table 2 compares `model.remat` at the paper batch per device (4096 on 128 chips = 32).

    python benchmarks/memory.py                 # ViT-L/16 MAE (bfloat16 compute), scanned layers
    python benchmarks/memory.py --size base --per-device-batch 8    # quicker
    python benchmarks/memory.py --no-scan       # unrolled layers (slower to compile)

CPU buffer assignment is not TPU's, so absolute `temp` numbers are indicative; the
ratios (1/fsdp for state, the remat saving) are what carries over.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


import jax  # noqa: E402
import numpy as np  # noqa: E402

from mmjax.config import load_experiment  # noqa: E402
from mmjax.train import compile_train_step  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3


def load_config(size: str):
    return load_experiment(ROOT / "experiments" / "mae_vit_imagenet.py", f"size={size}")


def measure(size: str, fsdp: int, per_device_batch: int, remat: str, scan: bool) -> dict[str, float]:
    """Compile one step; returns per-device GiB of `state`, `batch`, `temp` and the compile seconds."""
    config = load_config(size)
    devices = jax.device_count()
    config.mesh.update(data=devices // fsdp, fsdp=fsdp, tensor=1)
    config.model.update(remat=remat, scan=scan)
    config.train.batch_size = per_device_batch * devices
    start = time.perf_counter()
    stats = compile_train_step(config).memory_analysis()
    seconds = time.perf_counter() - start
    h, w = config.data.image_size
    batch_bytes = per_device_batch * (h * w * config.data.channels * np.dtype(np.uint8).itemsize + 4)
    return {
        "state": (stats.argument_size_in_bytes - batch_bytes) / GIB,
        "batch": batch_bytes / GIB,
        "temp": stats.temp_size_in_bytes / GIB,
        "compile_s": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="large", help="ViT size of experiments/mae_vit_imagenet.py")
    parser.add_argument("--per-device-batch", type=int, default=32, help="images per device for the remat table")
    parser.add_argument("--no-scan", action="store_true", help="unrolled layers instead of scan")
    parser.add_argument("--remat", default="none,dots,full", help="remat policies to compare")
    args = parser.parse_args()
    scan = not args.no_scan
    platform = jax.devices()[0].platform
    print(f"MAE ViT-{args.size} step on {jax.device_count()} simulated {platform} devices, scan={scan}")

    print("\n| fsdp | data | state GiB/device | x fsdp=1 | temp GiB/device | compile s |")
    print("|---:|---:|---:|---:|---:|---:|")
    first = None
    for fsdp in (1, 2, 4, 8):
        row = measure(args.size, fsdp, 1, "none", scan)
        first = first or row["state"]
        data = jax.device_count() // fsdp
        print(
            f"| {fsdp} | {data} | {row['state']:.3f} | {row['state'] / first:.3f} | {row['temp']:.3f} |"
            f" {row['compile_s']:.0f} |",
            flush=True,
        )

    batch = args.per_device_batch
    print(f"\n| remat (fsdp=8, {batch} images/device) | temp GiB/device | state GiB/device | compile s |")
    print("|---|---:|---:|---:|")
    for remat in args.remat.split(","):
        row = measure(args.size, 8, args.per_device_batch, remat, scan)
        print(f"| {remat} | {row['temp']:.3f} | {row['state']:.3f} | {row['compile_s']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
