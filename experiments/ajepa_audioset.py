"""A-JEPA ViT-B pretraining on AudioSet (Fei et al. 2023): 128 mel x 1024 frames, 16 x 16 patches, curriculum masks.

Data as `audiomae_audioset.py` (user-provided 16 kHz wav clips under `<path>/train/<label>/`,
the same log-mel features: `mmjax.data.presets.audioset_wav`). I-JEPA's method on the spectrogram's
64 x 8 patch grid (`mmjax.methods.grid_jepa`): ViT-B target and context encoders without a cls
token, predictor 384 x 12, EMA 0.996 -> 1. Masks: A-JEPA's curriculum (`mask.kind=curriculum`),
random patches at first and time-frequency masks (half the time rows, half the mel columns: 75%
hidden) with a chance rising to 1 over the first 10 epochs; all hidden patches are one target set.
A-JEPA's easy masks are random blocks and its schedule details were not at hand: the
optimizer below is Audio-MAE's 32-epoch AudioSet-2M recipe with I-JEPA's weight decay ramp.

Variants (`--config experiments/ajepa_audioset.py:path=/data/audioset_wav,masking=blocks`):
  path     the folder holding train/ (and test/)
  epochs   pretraining epochs
  masking  curriculum (A-JEPA) | time_frequency (no curriculum) | blocks (I-JEPA's multi-block
           targets on the spectrogram)
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import grid_jepa
from mmjax.train.defaults import training_sections

AUDIOSET_2M_CLIPS = 2_000_000


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, path="/data/audioset_wav", epochs=32, masking="curriculum")
    if variant["masking"] not in ("curriculum", "time_frequency", "blocks"):
        raise ValueError(f"masking must be curriculum, time_frequency or blocks, got {variant['masking']!r}")
    config = training_sections(grid_jepa.default_config("audio"))
    config.model.update(width=768, depth=12, heads=12, mlp_dim=3072, dtype="bfloat16")
    config.predictor.update(width=384, depth=12, heads=12, mlp_dim=1536)
    batch = 512
    steps_per_epoch = AUDIOSET_2M_CLIPS // batch
    steps = variant["epochs"] * steps_per_epoch
    config.gridjepa.update(patch_size=(16, 16), mask_ratio=0.75)
    if variant["masking"] == "blocks":
        config.gridjepa.targets = "blocks"
    else:
        config.gridjepa.targets = "mask"
        config.mask.kind = variant["masking"]
        config.mask.curriculum.update(time_ratio=0.5, freq_ratio=0.5, ramp_share=min(1.0, 10 / variant["epochs"]))
        config.mask.time_frequency.update(time_ratio=0.5, freq_ratio=0.5)
    config.data = presets.audioset_wav(variant["path"])
    config.train.update(
        batch_size=batch,
        lr=2e-4 * batch / 256,
        steps=steps,
        warmup_steps=3 * steps_per_epoch,
        weight_decay=0.04,
        weight_decay_end=0.4,
        b1=0.9,
        b2=0.95,
        log_every=100,
        checkpoint_every=2000,
    )
    config.eval.protocols = ()  # no labelled test split here
    return config
