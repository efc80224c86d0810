"""MAE on scikit-learn's bundled 8x8 digits: a seconds-long smoke run and the test fixture.

Variants: `steps=N`.
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import mae
from mmjax.train.defaults import training_sections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, steps=200)
    config = training_sections(mae.default_config())
    config.model.update(size=None, image_size=8, patch_size=2, channels=1, width=32, depth=2, heads=4, mlp_dim=64)
    config.decoder.update(width=32, depth=1, heads=4, mlp_dim=64)
    config.mae.update(mask_ratio=0.75, norm_pix_loss=False)
    config.data = presets.digits()
    config.train.update(
        steps=variant["steps"], batch_size=64, lr=2e-3, warmup_steps=10, log_every=20, checkpoint_every=100
    )
    config.eval.linear_probe.steps = 200
    config.eval.reconstruction_figure.examples = 8
    return config
