"""Point-MAE pretraining at paper scale on ShapeNet55 (Pang et al. 2022), from user-provided files.

1024 points per cloud, 64 groups of 32, mask ratio 0.6, a 12-layer 384-wide encoder
(6 heads) and a 4-layer decoder; AdamW lr 1e-3, wd 0.05, batch 128, 300 epochs with
10 warmup epochs, as in the paper. The clouds are not bundled: convert ShapeNet55
(the Point-BERT release: 8,192-point `.npy` files and `train.txt` / `test.txt`) into two
files `shapenet55_train.npz` and `shapenet55_test.npz`, each with `points` float32
`[N, >= 1024, 3]` (FPS-subsampled to 1024 and normalized to the unit ball) and `labels`
int `[N]`, and point `data.path` at them:

    python -m mmjax train --config experiments/pointmae_shapenet.py \
        --config.data.path=/data/shapenet55_{split}.npz --workdir /runs/pointmae

Variants: `steps=N` (default: 300 epochs of the 41,952 training clouds at batch 128).
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data.shapes import shapes_config
from mmjax.methods import pointmae
from mmjax.train.defaults import training_sections

TRAIN_CLOUDS = 41952


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    batch_size = 128
    steps_per_epoch = TRAIN_CLOUDS // batch_size
    variant = parse_arg(arg, steps=300 * steps_per_epoch)
    config = training_sections(pointmae.default_config())  # 384 wide, 12 + 4 blocks, 64 x 32 groups, ratio 0.6
    config.data = shapes_config(num_points=1024)
    config.data.update(source="npz", path="/data/shapenet55_{split}.npz")
    config.train.update(
        steps=variant["steps"],
        batch_size=batch_size,
        lr=1e-3,
        warmup_steps=10 * steps_per_epoch,
        weight_decay=0.05,
        b1=0.9,
        b2=0.999,
        log_every=100,
        checkpoint_every=5000,
    )
    config.eval.points_probe.update(steps=500, pool="mean")
    return config
