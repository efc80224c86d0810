"""Variants that are only experiment files, next to their base methods at equal steps.

MAE with BEiT's block-wise mask (`experiments/mae_blockwise_mnist.py`, `mask.kind=blockwise`),
HPM, AttMask's mask, DMJD's disjoint views and 4M's target budget next to MAE
(`experiments/mae_mnist.py`); SimMIM with MaskFeat's HOG target
(`experiments/simmim_hog_mnist.py`, `target.kind=hog`) and MFM next to SimMIM
(`experiments/simmim_mnist.py`). Each trains for `--steps` updates through
`mmjax.train.train` in this one run, then its encoder's mean token features of unmasked
images are probed on the 1,000 held-out digits (linear probe and cosine kNN, the
`benchmarks/methods_probe.py` protocol, reused from there), next to the same architecture
at its random initialization.

    python benchmarks/variants_probe.py                 # 500 steps each, every experiment below
    python benchmarks/variants_probe.py --steps 200 --experiments mae_mnist,mae_blockwise_mnist
    python benchmarks/variants_probe.py --seed 1 --experiments mae_mnist,mae_dmjd_mnist   # a second seed

`--seed` sets `config.seed` (initialization, masks and the data order); the random-encoder
columns use the same seed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from methods_probe import probes, run  # noqa: E402

from mmjax.data.kinds import data_kind  # noqa: E402

# experiment -> (what it is, its base experiment or None)
EXPERIMENTS = {
    "mae_mnist": ("MAE (random mask, norm-pix)", None),
    "mae_blockwise_mnist": ("MAE, mask.kind=blockwise", "mae_mnist"),
    "simmim_mnist": ("SimMIM (cells mask, pixels, L1)", None),
    "simmim_hog_mnist": ("SimMIM, target.kind=hog (MSE)", "simmim_mnist"),
    "simmim_mfm_mnist": ("MFM: SimMIM, simmim.domain=frequency", "simmim_mnist"),
    "mae_hpm_mnist": ("HPM: MAE, mask.kind=hard_patch", "mae_mnist"),
    "mae_attmask_mnist": ("AttMask's mask on MAE, mask.kind=attention_guided", "mae_mnist"),
    "mae_dmjd_mnist": ("DMJD: MAE, dmjd.num_views=2", "mae_mnist"),
    "mae_target_budget_mnist": ("4M's target budget: MAE, budget.target_ratio=0.5", "mae_mnist"),
    "mae_supervised_mnist": ("SupMAE: MAE, supervised.weight=1 (uses the labels)", "mae_mnist"),
    "mae_localmim_mnist": ("LocalMIM: MAE, localmim.blocks=(2,), regions=(2,)", "mae_mnist"),
    "jepa_mnist": ("I-JEPA", None),
    "jepa_stop_mnist": ("StoP / FlexPredict: I-JEPA, predictor.position_noise=0.25", "jepa_mnist"),
    "jepa_capi_mnist": ("CAPI-style cluster targets: I-JEPA, capi.num_clusters=32", "jepa_mnist"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", default=",".join(EXPERIMENTS))
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--workdir", default="runs/variants_probe")
    parser.add_argument("--seed", type=int, default=None, help="config.seed for every run (default: each file's)")
    args = parser.parse_args()
    root = Path(args.workdir)
    rows = []
    header = (
        "| experiment | what | linear probe | random encoder | kNN (k=20) | random kNN | final loss | train time |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    for name in args.experiments.split(","):
        done = run(name, args.steps, root / name, seed=args.seed)
        config, result = done["config"], done["result"]
        method = result.method
        example = data_kind(config.data).example_batch(config.data)
        trained = probes(config, method, result.state.params)
        random = probes(config, method, method.init(jax.random.key(config.seed + 12345), example))
        row = (
            f"| {name} | {EXPERIMENTS[name][0]} | {100 * trained['linear']:.1f}% | {100 * random['linear']:.1f}% | "
            f"{100 * trained['knn']:.1f}% | {100 * random['knn']:.1f}% | {result.history[-1]['loss']:.4f} | "
            f"{done['seconds']:.0f} s |"
        )
        rows.append(row)
        print(row, flush=True)
    platform = jax.devices()[0].platform
    seed = "each file's seed" if args.seed is None else f"seed {args.seed}"
    print(f"\n{args.steps} steps each on the bundled MNIST subset (4,000 train / 1,000 test), {seed}, {platform}")
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    main()
