"""Audio-MAE on bundled synthesized sounds (6 classes, 8 kHz, 64 x 32 log-mel): minutes on 2 CPU cores.

Patches 4 x 4 (a 16 x 8 grid of 128 tokens). The end-of-run probe classifies the sound.
Variants: `steps=N`, `masking=random|time_frequency|curriculum` (curriculum: random ->
time-frequency masks over the first half of training).
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import audiomae
from mmjax.train.defaults import training_sections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, steps=400, masking="curriculum")
    config = training_sections(audiomae.default_config())
    config.model.update(width=64, depth=2, heads=4, mlp_dim=128)
    config.decoder.update(width=32, depth=1, heads=4, mlp_dim=64)
    steps = variant["steps"]
    config.audiomae.update(
        patch_size=(4, 4),
        masking=variant["masking"],
        mask_ratio=0.75,
        time_ratio=0.5,
        freq_ratio=0.5,
        curriculum_steps=max(1, steps // 2),
    )
    config.data = presets.synth_audio()
    config.train.update(steps=steps, batch_size=32, lr=2e-3, warmup_steps=20, log_every=50, checkpoint_every=1000)
    config.eval.batch_size = 200
    config.eval.kind_probe.steps = 300
    return config
