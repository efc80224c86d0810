"""VideoMAE ViT-B pretraining on Kinetics-400 or Something-Something v2 (Tong et al. 2022).

Data are user-provided: decode each clip once to `<path>/train/<class>/<clip>.npy`
(uint8 `[frames, H, W, 3]`, at least 16 x stride frames; e.g. with ffmpeg or decord)
and, for the end-of-run probe, `<path>/test/...` the same way (`data.source=npy_folder`,
see `mmjax/data/video.py`). Frames are resized and center-cropped to 224 x 224.

Variants (`--config experiments/videomae_kinetics.py:data=ssv2,path=/data/ssv2`):
  data    kinetics (frame stride 4) | ssv2 (frame stride 2)
  path    the folder holding train/ (and test/)
  epochs  pretraining epochs (800 in the paper for K400 and SSv2 ViT-B)

Recipe: 16 x 224 x 224 clips, tubelets 2 x 16 x 16 (8 x 14 x 14 = 1568 tokens), tube
masking 0.9, decoder 384 wide x 4 blocks, normalized-pixel loss, AdamW (0.9, 0.95),
weight decay 0.05, lr = 1.5e-4 * batch / 256, 40 warmup epochs, half-cycle cosine.
No augmentation beyond the crop here (the paper adds multi-scale crops and flips for K400).
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import videomae
from mmjax.train.defaults import training_sections

TRAIN_CLIPS = {"kinetics": 240_000, "ssv2": 168_913}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, data="kinetics", path="/data/kinetics400_npy", epochs=800)
    if variant["data"] not in TRAIN_CLIPS:
        raise ValueError(f"data must be one of {sorted(TRAIN_CLIPS)}, got {variant['data']!r}")
    config = training_sections(videomae.default_config())
    config.model.update(width=768, depth=12, heads=12, mlp_dim=3072, dtype="bfloat16")
    config.decoder.update(width=384, depth=4, heads=6, mlp_dim=1536)
    config.videomae.update(tubelet_size=(2, 16, 16), mask_ratio=0.9, norm_pix_loss=True)
    config.data = presets.video_clips(variant["path"], variant["data"])
    batch = 1024
    steps_per_epoch = TRAIN_CLIPS[variant["data"]] // batch
    config.train.update(
        batch_size=batch,
        lr=1.5e-4 * batch / 256,
        steps=variant["epochs"] * steps_per_epoch,
        warmup_steps=40 * steps_per_epoch,
        weight_decay=0.05,
        b1=0.9,
        b2=0.95,
        log_every=100,
        checkpoint_every=2000,
    )
    config.eval.protocols = ()  # ("kind_probe",) when <path>/test exists
    return config
