"""A-JEPA on the bundled synthesized sounds (6 classes, 8 kHz, 64 x 32 log-mel): minutes on 2 CPU cores.

A-JEPA (Fei et al. 2023) is I-JEPA on spectrogram patches with a curriculum from random to
time-frequency-aware masks (`mmjax.methods.grid_jepa`). Patches 4 x 4 (a 16 x 8 grid of 128
tokens, as `audiomae_synth.py`); the hidden tokens are one target set (`gridjepa.targets=mask`),
75% of them: half the time rows and half the frequency columns (8 x 4 visible), or as many
random patches; the chance of the time-frequency mask rises from 0 to 1 over the first half of
training (`mask.curriculum.ramp_share=0.5`). Encoder 64 wide x 2 blocks, predictor 32 x 1. The
run ends with a linear probe of the target encoder's mean token on the held-out sounds.

Variants (`--config experiments/ajepa_synth.py:steps=400,masking=blocks`):
  steps    training steps
  masking  curriculum (A-JEPA) | time_frequency (no curriculum) | random | blocks (I-JEPA's
           multi-block targets on the spectrogram: the base)
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import grid_jepa
from mmjax.train.defaults import training_sections

MASKINGS = ("curriculum", "time_frequency", "random", "blocks")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, steps=400, masking="curriculum")
    if variant["masking"] not in MASKINGS:
        raise ValueError(f"masking must be one of {MASKINGS}, got {variant['masking']!r}")
    config = training_sections(grid_jepa.default_config("audio"))
    config.model.update(width=64, depth=2, heads=4, mlp_dim=128)
    config.predictor.update(width=32, depth=1, heads=4, mlp_dim=64)
    config.gridjepa.update(patch_size=(4, 4), mask_ratio=0.75)
    if variant["masking"] == "blocks":
        config.gridjepa.targets = "blocks"
        config.jepa.update(num_targets=2, min_keep=8)
    else:
        config.gridjepa.targets = "mask"
        config.mask.kind = variant["masking"]
        config.mask.curriculum.update(time_ratio=0.5, freq_ratio=0.5, ramp_share=0.5)
        config.mask.time_frequency.update(time_ratio=0.5, freq_ratio=0.5)
    config.data = presets.synth_audio()
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
    config.eval.batch_size = 200
    config.eval.kind_probe.steps = 300
    return config
