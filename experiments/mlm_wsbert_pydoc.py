"""WSBERT's loss-weighted sampling on the bundled Python reference manual: `mlm_pydoc.py` with
`mlm.selection=loss_weighted`.

WSBERT (Zhang et al. 2023, "Weighted Sampling for Masked Language Modeling") masks tokens the
model still predicts badly more often: a running mean of each token id's training
cross-entropy (`params["token_loss"]`, momentum `wsbert.loss_momentum`) weighs the choice,
probability proportional to `token_loss ** mlm.weight_alpha` (here 1), BERT's count and
80/10/10 corruption otherwise. Its static strategy, weighting by corpus frequency, is
`mlm_pydoc.py:selection=frequency_weighted`. The held-out evaluation corrupts uniformly (it
has no running table), so the masked-token accuracy it reports compares with BERT's.
Everything else is `mlm_pydoc.py`'s recipe.

Variants: as `mlm_pydoc.py` (`steps=N`, `rate=...`); its `selection=...` is read but replaced
here by WSBERT's loss weighting.
"""

from pathlib import Path

import ml_collections

from mmjax.config import load_experiment


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = load_experiment(Path(__file__).with_name("mlm_pydoc.py"), arg)
    config.mlm.update(selection="loss_weighted", weight_alpha=1.0)
    return config
