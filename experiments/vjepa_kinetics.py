"""V-JEPA-style ViT-L/16 pretraining on Kinetics-400 or SSv2 (Bardes et al. 2024): 16 x 224 x 224, tubelets 2 x 16 x 16.

Data as `videomae_kinetics.py` (user-provided decoded clips, `mmjax.data.presets.video_clips`).
I-JEPA's method on the 8 x 14 x 14 tubelet grid (`mmjax.methods.grid_jepa`): ViT-L encoders
without a cls token, predictor 384 x 12, EMA 0.998 -> 1, weight decay 0.04 -> 0.4, AdamW, peak
lr 6.25e-4 after 12 of 90 (x 1000) iterations at batch 3072, as V-JEPA. Masks: V-JEPA's
short-range 3-D multi-block, 8 spatial blocks of 15% (aspect 0.75-1.5) extended over every time
slot (`mmjax.masking.tube_blocks`). Deviations: V-JEPA also draws 2 long-range blocks of 70% in a
second mask set, predicts the union of the blocks in one pass, takes every token outside them as
context and uses an L1 loss; here each block is predicted separately (I-JEPA's predictor), the
context block is I-JEPA's (85-100% of the plane, at most one row and column short) and the loss
is smooth L1.

Variants (`--config experiments/vjepa_kinetics.py:data=ssv2,path=/data/ssv2`): `data=kinetics|ssv2`,
`path=...`, `steps=N` (90000).
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import grid_jepa
from mmjax.train.defaults import training_sections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, data="kinetics", path="/data/kinetics400_npy", steps=90_000)
    config = training_sections(grid_jepa.default_config("video"))
    config.model.update(width=1024, depth=24, heads=16, mlp_dim=4096, dtype="bfloat16")
    config.predictor.update(width=384, depth=12, heads=12, mlp_dim=1536)
    config.gridjepa.update(patch_size=(2, 16, 16), targets="blocks")
    config.jepa.update(
        num_targets=8, target_scale=(0.15, 0.15), target_aspect=(0.75, 1.5), momentum_start=0.998, momentum_end=1.0
    )
    config.data = presets.video_clips(variant["path"], variant["data"])
    config.train.update(
        batch_size=3072,
        lr=6.25e-4,
        steps=variant["steps"],
        warmup_steps=12_000,
        weight_decay=0.04,
        weight_decay_end=0.4,
        b1=0.9,
        b2=0.999,
        log_every=100,
        checkpoint_every=2000,
    )
    config.eval.protocols = ()  # no labelled test split here
    return config
