"""MaskDistill pretraining on ImageNet-1K: a ViT-B/16 student of a frozen ViT teacher run.

  python -m mmjax train --config experiments/distill_vit_imagenet.py \\
      --config.distill.teacher_workdir=gs://bucket/mae_vit_base --workdir gs://bucket/maskdistill_b16

Variants (`--config experiments/distill_vit_imagenet.py:mode=maskalign,data=arrayrecord`):
  mode    maskdistill (block-wise 40% mask, student sees mask tokens, loss on hidden
          tokens) | maskalign (random 70% mask, student sees visible tokens only)
  data    imagefolder | arrayrecord
  path    where the training data lives
  epochs  300
  teacher  the teacher run's workdir (the same as --config.distill.teacher_workdir)

Recipe after Peng et al. 2022 (MaskDistill): batch 2048, AdamW (0.9, 0.999), lr 1.5e-3,
weight decay 0.05, 10 warmup epochs then cosine, block-wise masking of 40% of the
tokens, smooth L1 on LayerNorm-ed (no affine) teacher features. The paper's teacher is
CLIP ViT-B/16; here the teacher is any mmjax run at 224 px with a 14 x 14 grid (e.g.
`experiments/mae_vit_imagenet.py`, size base). MaskAlign (Xue et al. 2023) uses a
70% random mask and aligns visible tokens; its multi-level dynamic alignment is not
implemented (one linear head on the last layer).
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import distill
from mmjax.train.defaults import training_sections

IMAGENET_TRAIN_IMAGES = 1_281_167


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(
        arg, mode="maskdistill", teacher="", data="imagefolder", path="/data/imagenet/train", epochs=300
    )
    if variant["mode"] not in distill.MODES:
        raise ValueError(f"mode must be one of {distill.MODES}, got {variant['mode']!r}")
    if variant["data"] not in ("imagefolder", "arrayrecord"):
        raise ValueError(f"data must be 'imagefolder' or 'arrayrecord', got {variant['data']!r}")
    config = training_sections(distill.default_config())
    config.model.update(size="base", image_size=224, patch_size=16, dtype="bfloat16")
    align = variant["mode"] == "maskalign"
    config.distill.update(
        teacher_workdir=variant["teacher"],
        mode=variant["mode"],
        loss="smooth_l1",
        mask_ratio=0.7 if align else 0.4,
        masking="random" if align else "blockwise",
        target_norm="layernorm",
    )
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
        b2=0.999,
        log_every=100,
        checkpoint_every=2000,
    )
    config.eval.protocols = ()  # no labelled test split here
    return config
