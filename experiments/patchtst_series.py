"""PatchTST masked patch reconstruction on bundled statsmodels series (sunspots, co2, elnino).

Pretrains on windows from the start of each series; `evaluate` reports imputation and
forecasting on windows of its held-out end (the last 20%, at least one window) against
linear interpolation, last value and seasonal naive, and linear probes on UCR sets
bundled with sktime. A few minutes on 2 CPU cores.

Variants: `steps=N`, `window=L` (a multiple of the patch length 8).
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data.series import series_config
from mmjax.methods import patchtst
from mmjax.train.defaults import training_sections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, steps=1500, window=96)
    config = training_sections(patchtst.default_config())
    config.model.update(width=64, depth=2, heads=4, mlp_dim=128)
    config.patchtst.update(patch_len=8, mask_ratio=0.4)
    config.data = series_config(window=variant["window"])
    config.train.update(
        steps=variant["steps"], batch_size=64, lr=1e-3, warmup_steps=50, weight_decay=0.01, log_every=100
    )
    config.train.update(checkpoint_every=variant["steps"])
    config.eval.series.update(steps=300, stride=4, horizon_patches=2)
    return config
