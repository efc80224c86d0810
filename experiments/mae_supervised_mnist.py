"""Supervised MIM (SupMAE) on the bundled MNIST: `experiments/mae_mnist.py` plus a label branch.

SupMAE (Liang et al. 2022, "Supervised Masked Autoencoders Are Efficient Vision Learners")
adds a classification branch to MAE that sees the visible patches only: the encoder's visible
patch tokens are averaged, normalized and mapped to the 10 digit classes by a linear head, and
the cross-entropy on the labels is added to the norm-pix reconstruction loss
(`supervised.weight`, here 1: the two terms summed; `mmjax.methods.label_loss`). Everything else
is `mae_mnist.py`'s recipe. Left out: SupMAE's label smoothing and mixup
(`supervised.label_smoothing` is there, at 0).

The probe of this encoder uses the labels it was trained on, so it is not a self-supervised
number; compare it with MAE's to see what the labels add at equal steps.

Variants (`--config experiments/mae_supervised_mnist.py:steps=200,runlocal`):
  steps     training steps
  runlocal  shrink further for a smoke test (tiny model, 20 steps)
"""

from pathlib import Path

import ml_collections

from mmjax.config import load_experiment


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = load_experiment(Path(__file__).with_name("mae_mnist.py"), arg)
    config.supervised.weight = 1.0
    config.supervised.num_classes = 10
    return config
