"""Point-MAE on bundled clouds sampled from trimesh primitives (8 shape classes), probed on the class.

256 points per cloud, 32 groups of 16, mask ratio 0.6, a small encoder. A few minutes on 2 CPU cores.

Variants: `steps=N`.
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data.shapes import shapes_config
from mmjax.methods import pointmae
from mmjax.train.defaults import training_sections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, steps=600)
    config = training_sections(pointmae.default_config())
    config.model.update(width=64, depth=2, heads=4, mlp_dim=128)
    config.decoder.update(width=64, depth=1, heads=4, mlp_dim=128)
    config.pointmae.update(num_groups=32, group_size=16, mask_ratio=0.6, pointnet_hidden=(32, 64))
    config.data = shapes_config(num_points=256, train_per_class=64, test_per_class=32)
    config.train.update(steps=variant["steps"], batch_size=32, lr=1e-3, warmup_steps=30, log_every=50)
    config.train.update(checkpoint_every=variant["steps"])
    config.eval.points_probe.update(steps=300, pool="mean_max")
    return config
