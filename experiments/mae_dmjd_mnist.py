"""MAE with DMJD's disjoint masking on the bundled MNIST: `experiments/mae_mnist.py` with `dmjd.num_views=2`.

DMJD (Ma et al. 2023, "Disjoint Masking with Joint Distillation") shows each image as several
masked views whose visible sets never overlap (`mmjax.masking.disjoint_view_masks`): here 2
views of MAE's 12 visible tokens out of 49, drawn from one random permutation per image, so
each step reconstructs every image twice from different evidence. The views are encoded as one
batch of 2 x 128 and the loss is the mean of the two views' norm-pix MSE. Everything else is
`mae_mnist.py`'s recipe. Left out: DMJD's joint-distillation term between the views and its
learning-rate scaling for the larger effective batch.

Measured (`python benchmarks/variants_probe.py --steps 500 --experiments mae_mnist,mae_dmjd_mnist`, one
seed, 2 loaded CPU cores): linear probe 81.6%, kNN (k=20) 64.6%, final loss 0.3090; MAE at equal
steps 80.7% / 62.0% / 0.3172; the random encoder 79.3% / 41.6%.

Variants (`--config experiments/mae_dmjd_mnist.py:steps=200,runlocal`):
  steps     training steps
  runlocal  shrink further for a smoke test (tiny model, 20 steps)
"""

from pathlib import Path

import ml_collections

from mmjax.config import load_experiment


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = load_experiment(Path(__file__).with_name("mae_mnist.py"), arg)
    config.dmjd.num_views = 2
    return config
