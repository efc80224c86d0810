"""MLM vs CLM on the bundled Python reference manual: `mlm_pydoc.py`'s BERT trained CLM first, then MLM.

Gisserot-Boukhlef et al. 2025 ("Should We Still Pretrain Encoders with Masked Language
Modeling?") train the same encoder with causal language modeling, masked language modeling, or
CLM followed by MLM, and find the biphasic schedule competitive at a fixed budget. This file is
the biphasic run: `mlm.objective=clm_then_mlm`, CLM (causal attention, next-token cross-entropy
within each packed document) for the first half of `train.steps` (`mlm.clm_share=0.5`), then
`mlm_pydoc.py`'s MLM. `--config.mlm.objective=clm` trains CLM only and `mlm` is `mlm_pydoc.py`.
The held-out evaluation is masked-token prediction (bidirectional) for all three.

Variants: as `mlm_pydoc.py` (`steps=N`, `rate=...`); its `selection=...` applies to the MLM phase.
"""

from pathlib import Path

import ml_collections

from mmjax.config import load_experiment


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = load_experiment(Path(__file__).with_name("mlm_pydoc.py"), arg)
    config.mlm.update(objective="clm_then_mlm", clm_share=0.5)
    return config
