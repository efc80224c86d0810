"""CAPI-style cluster targets on the bundled MNIST: `experiments/jepa_mnist.py` predicting clusters, not features.

CAPI (Darcet et al. 2025, "Cluster and Predict Latent Patches for Improved Masked Image
Modeling") replaces I-JEPA's feature regression with a classification: the EMA teacher's patch
features are clustered online against K learned prototypes, Sinkhorn-Knopp balances the
assignments over the batch at each patch position (CAPI's `positionwise_sk`; `capi.positionwise`),
and each hidden patch's prediction is scored by cross-entropy
against its patch's assignment; the prototypes learn from the teacher's own clustering loss
(`mmjax.methods.cluster_targets`). Here K = 32 for 49-token digits (`capi.num_clusters`), three
Sinkhorn rounds, temperatures 0.05 (teacher) and 0.1. Everything else is `jepa_mnist.py`'s
recipe, including its self-attention predictor (CAPI's is cross-attention).

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
    return config
