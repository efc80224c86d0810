"""MAE-LM on the bundled Python reference manual: `experiments/mlm_pydoc.py` with a decoder after the encoder.

MAE-LM (Meng et al. 2024, "Representation Deficiency in Masked Language Modeling") keeps BERT's
selection and 80/10/10 corruption but never lets the encoder see a `[MASK]` token: the
positions replaced by `[MASK]` are cut out of the encoder's attention (the randomly replaced
and kept 10% + 10% stay, as real tokens), and a shallow decoder (`model.decoder_depth`, here
1 block after the 2-block encoder) re-embeds those positions next to the encoder's outputs
and predicts every chosen token through the tied head. Only the encoder is meant for
downstream use. Everything else is `mlm_pydoc.py`'s recipe.

Variants: as `mlm_pydoc.py` (`steps=N`, `selection=...`, `rate=...`).
"""

from pathlib import Path

import ml_collections

from mmjax.config import load_experiment


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = load_experiment(Path(__file__).with_name("mlm_pydoc.py"), arg)
    config.model.decoder_depth = 1
    return config
