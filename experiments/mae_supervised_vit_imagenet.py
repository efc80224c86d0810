"""SupMAE on ImageNet-1K: `experiments/mae_vit_imagenet.py` with the label branch on the 1,000 classes.

Supervised MIM (Liang et al. 2022): MAE's recipe plus a classifier on the mean of the
encoder's visible tokens, its cross-entropy on the ImageNet labels added at weight 1
(`supervised.weight`, `supervised.num_classes=1000`). SupMAE's point is that fewer epochs
suffice; its own schedule and label smoothing are not reproduced here (`:epochs=...`,
`--config.supervised.label_smoothing=0.1`). The CPU-sized version is `mae_supervised_mnist.py`.

Variants (`--config experiments/mae_supervised_vit_imagenet.py:size=large,epochs=400`):
  size    base (ViT-B/16) | large (ViT-L/16) | huge (ViT-H/14)
  data    imagefolder | arrayrecord
  path    where the training data lives
  epochs  800 (MAE's schedule; choose SupMAE's shorter one here)
"""

from pathlib import Path

import ml_collections

from mmjax.config import load_experiment


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = load_experiment(Path(__file__).with_name("mae_vit_imagenet.py"), arg)
    config.supervised.update(weight=1.0, num_classes=1000)
    return config
