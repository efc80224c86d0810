"""StoP / FlexPredict on the bundled MNIST: `experiments/jepa_mnist.py` with stochastic mask-token positions.

StoP (Bar et al. 2024, "Stochastic positional embeddings improve masked image modeling"; the
FlexPredict system) keeps I-JEPA whole and changes one thing: the predictor's mask tokens are
placed at Gaussian positions around their patches, `B (sigma * n + m) + psi` with `n ~ N(0, I)`
in the encoder's width, `m` a learned token and `B` the predictor's own context projection (the
weight tying that keeps the learned covariance `sigma^2 B B^T` from collapsing to zero). The
paper's sigma is 0.25 (`predictor.position_noise`). Everything else is `jepa_mnist.py`'s recipe.

Variants (`--config experiments/jepa_stop_mnist.py:steps=300`):
  steps     training steps
  runlocal  shrink for a smoke test (tiny model, 20 steps)
"""

from pathlib import Path

import ml_collections

from mmjax.config import load_experiment


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = load_experiment(Path(__file__).with_name("jepa_mnist.py"), arg)
    config.predictor.position_noise = 0.25
    return config
