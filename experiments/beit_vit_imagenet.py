"""BEiT pretraining on ImageNet-1K at paper scale (Bao et al. 2022; BEiT v2 recipe), with targets
from a tokenizer trained by `experiments/vq_vit_imagenet.py`.

Variants (`--config experiments/beit_vit_imagenet.py:tokenizer=DIR,size=large`):
  tokenizer  the tokenizer run's workdir (its 14 x 14 code grid must be this ViT's patch grid)
  size       base (ViT-B/16) | large (ViT-L/16)
  data       imagefolder | arrayrecord;  path: where the data lives;  epochs: 300 (BEiT v2: 300 or 1600)

Recipe: batch 2048, AdamW (0.9, 0.98), lr 1.5e-3, weight decay 0.05, 10 warmup epochs of a
cosine schedule, 75 of 196 patches hidden block-wise (blocks >= 16 patches). Not here: BEiT's
layer scale, relative position bias and stochastic depth. Needs accelerators.
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import beit
from mmjax.train.defaults import training_sections

IMAGENET_TRAIN_IMAGES = 1_281_167
SIZES = ("base", "large")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(
        arg, tokenizer="/runs/vq_vit_imagenet", size="base", data="imagefolder", path="/data/imagenet/train", epochs=300
    )
    if variant["size"] not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {variant['size']!r}")
    config = training_sections(beit.default_config())
    config.model.update(size=variant["size"], image_size=224, patch_size=16, dtype="bfloat16")
    config.beit.update(tokenizer_workdir=variant["tokenizer"], mask_ratio=75 / 196, min_block=16, min_aspect=0.3)
    if variant["data"] not in ("imagefolder", "arrayrecord"):
        raise ValueError(f"data must be 'imagefolder' or 'arrayrecord', got {variant['data']!r}")
    # The tokenizer run's normalization (experiments/vq_vit_imagenet.py): BEiT checks they agree.
    config.data = presets.imagenet(variant["data"], variant["path"], crop_scale=(0.08, 1.0))
    batch = 2048
    steps_per_epoch = IMAGENET_TRAIN_IMAGES // batch
    config.train.update(
        batch_size=batch,
        lr=1.5e-3,
        steps=variant["epochs"] * steps_per_epoch,
        warmup_steps=10 * steps_per_epoch,
        weight_decay=0.05,
        b1=0.9,
        b2=0.98,
        grad_clip=3.0,
        log_every=100,
        checkpoint_every=2000,
    )
    config.eval.protocols = ("reconstruction_figure",)
    return config
