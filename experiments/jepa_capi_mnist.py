"""CAPI-style cluster targets on the bundled MNIST: `experiments/jepa_mnist.py` predicting clusters, not features.

CAPI (Darcet et al. 2025, "Cluster and Predict Latent Patches for Improved Masked Image
Modeling") replaces I-JEPA's feature regression with a classification: the EMA teacher's patch
features are clustered online against K learned prototypes, Sinkhorn-Knopp balances the
assignments, and each hidden patch's prediction is scored by cross-entropy
against its patch's assignment; the prototypes learn from the teacher's own clustering loss
(`mmjax.methods.cluster_targets`). Here K = 32 for 49-token digits (`capi.num_clusters`), three
Sinkhorn rounds, temperatures 0.05 (teacher) and 0.1. Everything else is `jepa_mnist.py`'s
recipe, including its self-attention predictor (CAPI's is cross-attention).

A deliberate deviation: the balancing runs over all patches of the batch together
(`capi.positionwise=False`), not per patch position over the batch as CAPI's default (the
library's default). On MNIST most positions are blank background in every image, and balancing
such a position over 32 clusters spreads identical patches over all of them: with the reference's
balancing, 500 steps (`python benchmarks/variants_probe.py --steps 500 --experiments
jepa_capi_mnist` with `capi.positionwise=True`) probe at the random encoder's level (74.6% / 41.3%
kNN against 74.6% / 43.3%), prediction loss 3.27 of log 32 = 3.47; together, 76.1% / 44.3% and
2.73 (docs/methods.md).

Variants (`--config experiments/jepa_capi_mnist.py:steps=300`):
  steps     training steps
  runlocal  shrink for a smoke test (tiny model, 20 steps)
"""

from pathlib import Path

import ml_collections

from mmjax.config import load_experiment


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = load_experiment(Path(__file__).with_name("jepa_mnist.py"), arg)
    config.capi.num_clusters = 32
    config.capi.positionwise = False  # blank background positions: see the docstring
    return config
