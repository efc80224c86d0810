"""HPM on ImageNet-1K: `experiments/mae_vit_imagenet.py` (MAE's paper recipe) with `mask.kind=hard_patch`.

Hard Patches Mining (Wang et al. 2023) on MAE's ViT recipe: the decoder's loss-predictor
branch, the relative (pairwise) objective at weight 1, an EMA teacher whose decay rises
0.999 -> 0.9999 over the first eighth of training (the paper's 100 of 800 epochs) and an
easy-to-hard share of teacher-chosen patches from 0 to 0.5 over the run. The `:runlocal`
smoke of the same mechanism is `mae_hpm_mnist.py`.

Variants (`--config experiments/mae_hpm_vit_imagenet.py:size=large,data=arrayrecord`):
  size    base (ViT-B/16) | large (ViT-L/16) | huge (ViT-H/14)
  data    imagefolder | arrayrecord
  path    where the training data lives
  epochs  800 (the paper's main schedule)
"""

from pathlib import Path

import ml_collections

from mmjax.config import load_experiment


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = load_experiment(Path(__file__).with_name("mae_vit_imagenet.py"), arg)
    config.mask.kind = "hard_patch"
    return config
