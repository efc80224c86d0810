"""V-JEPA-style video JEPA on the bundled moving digits (8 x 32 x 32 clips of two bouncing MNIST digits).

I-JEPA on tubelets (`mmjax.methods.grid_jepa`), as V-JEPA (Bardes et al. 2024) trains it:
tubelets 2 x 4 x 4 (a 4 x 8 x 8 grid of 256 tokens), spatial multi-block targets extended over
every time slot (`mmjax.masking.tube_blocks`), so a hidden region cannot be read off a
neighbouring frame; two target blocks of 15-20% of the 8 x 8 plane (V-JEPA's 8 short-range
and 2 long-range blocks of 15% and 70% leave nothing on a grid this small). Encoder 64 wide x
2 blocks, predictor 32 x 1, EMA 0.996 -> 1. The run ends with a linear probe of the target
encoder's mean token (the clip's digit class).

Variants (`--config experiments/vjepa_moving_digits.py:steps=800,masking=tube`):
  steps    training steps
  masking  blocks (V-JEPA's 3-D multi-block) | tube (VideoMAE's tube mask at 75%, all hidden
           tokens one target set)
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import grid_jepa
from mmjax.train.defaults import training_sections

MASKINGS = ("blocks", "tube")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, steps=800, masking="blocks")
    if variant["masking"] not in MASKINGS:
        raise ValueError(f"masking must be one of {MASKINGS}, got {variant['masking']!r}")
    config = training_sections(grid_jepa.default_config("video"))
    config.model.update(width=64, depth=2, heads=4, mlp_dim=128)
    config.predictor.update(width=48, depth=1, heads=4, mlp_dim=96)
    config.gridjepa.update(patch_size=(2, 4, 4), mask_ratio=0.75)
    config.jepa.update(num_targets=2, min_keep=8)
    if variant["masking"] == "tube":
        config.gridjepa.targets = "mask"
        config.mask.kind = "tube"
    config.data = presets.moving_digits()
    config.train.update(
        steps=variant["steps"],
        batch_size=32,
        lr=2e-3,
        warmup_steps=20,
        weight_decay=0.04,
        weight_decay_end=0.4,
        log_every=50,
        checkpoint_every=1000,
    )
    config.eval.batch_size = 250
    config.eval.kind_probe.steps = 300
    return config
