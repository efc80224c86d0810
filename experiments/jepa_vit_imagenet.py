"""I-JEPA pretraining on ImageNet-1K, the paper recipe (Assran et al. 2023; REFERENCE.md).

Variants (`--config experiments/jepa_vit_imagenet.py:size=large,data=arrayrecord`):
  size    huge (ViT-H/14, the paper's main model) | large (ViT-L/16) | base (ViT-B/16)
  data    imagefolder (ImageNet's train/<wnid>/*.JPEG tree) | arrayrecord
  path    where the training data lives
  epochs  300 in the paper

Recipe (the reference's `in1k_vith14_ep300` config): batch 2048, AdamW (0.9, 0.999),
lr 1e-3 after 40 warmup epochs, cosine to 1e-6 (the reference warms up from 2e-4, here
from 0), weight decay 0.04 -> 0.4 (cosine), EMA momentum 0.996 -> 1.0 (linear),
predictor 384 wide and 12 deep with the encoder's head count, 4 target blocks of scale
0.15-0.2 and aspect 0.75-1.5, one context block of scale 0.85-1.0, RandomResizedCrop
(0.3-1), no flip. Needs accelerators; on a pod run the same command on every host.
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import jepa
from mmjax.models.config import VIT_SIZES
from mmjax.train.defaults import training_sections

IMAGENET_TRAIN_IMAGES = 1_281_167
PATCH = {"base": 16, "large": 16, "huge": 14}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, size="huge", data="imagefolder", path="/data/imagenet/train", epochs=300)
    if variant["size"] not in PATCH:
        raise ValueError(f"size must be one of {sorted(PATCH)}, got {variant['size']!r}")
    if variant["data"] not in ("imagefolder", "arrayrecord"):
        raise ValueError(f"data must be 'imagefolder' or 'arrayrecord', got {variant['data']!r}")
    config = training_sections(jepa.default_config())
    config.model.update(size=variant["size"], image_size=224, patch_size=PATCH[variant["size"]], dtype="bfloat16")
    heads = VIT_SIZES[variant["size"]][2]
    config.predictor.update(width=384, depth=12, heads=heads, mlp_dim=4 * 384)
    config.jepa.update(
        num_targets=4, target_scale=(0.15, 0.2), target_aspect=(0.75, 1.5), context_scale=(0.85, 1.0), min_keep=10
    )
    config.jepa.update(momentum_start=0.996, momentum_end=1.0)
    config.data = presets.imagenet(variant["data"], variant["path"], crop_scale=(0.3, 1.0), flip=False)
    batch = 2048
    steps_per_epoch = IMAGENET_TRAIN_IMAGES // batch
    config.train.update(
        batch_size=batch,
        lr=1e-3,
        min_lr=1e-6,
        steps=variant["epochs"] * steps_per_epoch,
        warmup_steps=40 * steps_per_epoch,
        weight_decay=0.04,
        weight_decay_end=0.4,
        b1=0.9,
        b2=0.999,
        log_every=100,
        checkpoint_every=2000,
    )
    # A linear probe over ImageNet is a separate job; there is no reconstruction to draw.
    config.eval.protocols = ()  # no labelled test split here
    return config
