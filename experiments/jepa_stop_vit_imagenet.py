"""StoP / FlexPredict on ImageNet-1K: `experiments/jepa_vit_imagenet.py` (I-JEPA's recipe) with stochastic positions.

Bar et al. 2024 add one thing to I-JEPA: the predictor's mask tokens at Gaussian positions,
`B (sigma * n + m) + psi` with the context projection `B` tied in, sigma = 0.25
(`predictor.position_noise`). Everything else is `jepa_vit_imagenet.py`'s paper recipe. The
CPU-sized version is `jepa_stop_mnist.py`.

Variants (`--config experiments/jepa_stop_vit_imagenet.py:size=base,data=arrayrecord`):
  size    huge (ViT-H/14) | large (ViT-L/16) | base (ViT-B/16)
  data    imagefolder | arrayrecord
  path    where the training data lives
  epochs  300 in I-JEPA's paper
"""

from pathlib import Path

import ml_collections

from mmjax.config import load_experiment


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = load_experiment(Path(__file__).with_name("jepa_vit_imagenet.py"), arg)
    config.predictor.position_noise = 0.25
    return config
