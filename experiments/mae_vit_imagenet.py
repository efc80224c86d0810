"""MAE pretraining on ImageNet-1K, the paper recipe (He et al. 2022; REFERENCE.md).

Variants (`--config experiments/mae_vit_imagenet.py:size=large,data=arrayrecord`):
  size    base (ViT-B/16) | large (ViT-L/16) | huge (ViT-H/14)
  data    imagefolder (ImageNet's train/<wnid>/*.JPEG tree) | arrayrecord (files from
          mmjax.data.write_array_record)
  path    where the training data lives (a folder, or a glob of ArrayRecord files)
  epochs  800 (the paper's schedule; 1600 for its best numbers)

Recipe: batch 4096, AdamW (0.9, 0.95), weight decay 0.05, lr = 1.5e-4 * batch / 256,
800 epochs with 40 warmup epochs of a per-step half-cycle cosine, mask 0.75,
norm-pix loss, RandomResizedCrop(0.2-1) + flip. Needs accelerators; on a pod use the
same command on every host.
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import mae
from mmjax.train.defaults import training_sections

IMAGENET_TRAIN_IMAGES = 1_281_167
PATCH = {"base": 16, "large": 16, "huge": 14}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, size="base", data="imagefolder", path="/data/imagenet/train", epochs=800)
    if variant["size"] not in PATCH:
        raise ValueError(f"size must be one of {sorted(PATCH)}, got {variant['size']!r}")
    if variant["data"] not in ("imagefolder", "arrayrecord"):
        raise ValueError(f"data must be 'imagefolder' or 'arrayrecord', got {variant['data']!r}")
    config = training_sections(mae.default_config())
    config.model.update(size=variant["size"], image_size=224, patch_size=PATCH[variant["size"]], dtype="bfloat16")
    config.decoder.update(width=512, depth=8, heads=16, mlp_dim=2048)
    config.mae.update(mask_ratio=0.75, norm_pix_loss=True)
    config.data = presets.imagenet(variant["data"], variant["path"], crop_scale=(0.2, 1.0))
    batch = 4096
    steps_per_epoch = IMAGENET_TRAIN_IMAGES // batch
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
    # A linear probe over ImageNet is a separate job; keep the reconstruction figure.
    config.eval.protocols = ("reconstruction_figure",)
    return config
