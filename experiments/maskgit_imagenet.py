"""MaskGIT class-conditional ImageNet 256, the paper recipe (Chang et al. 2022; REFERENCE.md "MaskGIT").

256 x 256 images -> a frozen tokenizer's 16 x 16 map of 1024 codes -> a bidirectional
transformer of 24 layers, 8 heads, width 768, MLP 3072, class-conditional over the 1000
classes (plus the null class for guidance). Training: cosine mask schedule, cross entropy
on masked codes with label smoothing 0.1, batch 256, AdamW (0.9, 0.96), lr 1e-4, weight
decay 0.045, 5000 warmup steps, 300 epochs. Sampling: 8 steps, choice temperature 4.5.

The paper's tokenizer is a VQGAN (f = 16, 1024 codes); mmjax's is the ViT VQ tokenizer
of `mmjax.methods.vq`, set here to the same grid and vocabulary. Train it first with the
printed `tokenizer_config` (stage=tokenizer), then point `maskgit.tokenizer_workdir` at it:

  python -m mmjax train --config experiments/maskgit_imagenet.py:stage=tokenizer --workdir gs://.../vq256
  python -m mmjax train --config experiments/maskgit_imagenet.py --workdir gs://.../maskgit256 \
      --config.maskgit.tokenizer_workdir=gs://.../vq256

Variants: `stage=tokenizer|maskgit`, `data=imagefolder|arrayrecord`, `path=...`, `epochs=N`.
Needs accelerators.
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import maskgit, vq
from mmjax.train.defaults import training_sections

IMAGENET_TRAIN_IMAGES = 1_281_167


def tokenizer_config(data: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A ViT-B/16 VQ tokenizer: 256 px -> 16 x 16 codes out of 1024."""
    config = training_sections(vq.default_config())
    config.model.update(size="base", image_size=256, patch_size=16, channels=3, dtype="bfloat16")
    config.tokenizer.update(quantizer="vq", codebook="ema", vocab_size=1024, code_dim=32, decoder_depth=12)
    config.data = data
    config.train.update(steps=500_000, batch_size=256, lr=1e-4, warmup_steps=5000, log_every=100)
    config.eval.protocols = ("tokenizer", "reconstruction_figure")
    return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, stage="maskgit", data="imagefolder", path="/data/imagenet/train", epochs=300)
    if variant["data"] not in ("imagefolder", "arrayrecord"):
        raise ValueError(f"variant data={variant['data']!r}: expected 'imagefolder' or 'arrayrecord'")
    data = presets.imagenet(
        variant["data"],
        variant["path"],
        image_size=256,
        crop_scale=(0.8, 1.0),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
    )
    if variant["stage"] == "tokenizer":
        return tokenizer_config(data)
    if variant["stage"] != "maskgit":
        raise ValueError(f"variant stage={variant['stage']!r}: expected 'tokenizer' or 'maskgit'")
    config = training_sections(maskgit.default_config())
    config.model.update(dtype="bfloat16", scan=True, remat="dots")  # the 768 x 24, 8-head, 3072 MLP defaults
    config.maskgit.update(num_classes=1000, schedule="cosine", min_mask_rate=0.0, label_smoothing=0.1, cond_dropout=0.1)
    config.maskgit.tokenizer_workdir = ""  # set on the command line
    tok = tokenizer_config(data)
    config.tokenizer_config = ml_collections.ConfigDict(
        {"method": tok.method, "model": tok.model, "tokenizer": tok.tokenizer}
    )
    config.sample.update(steps=8, choice_temperature=4.5, guidance=1.0, guidance_schedule="constant", per_class=2)
    config.sample.metrics_per_class = 0  # the end-of-run judge is a raw-pixel MLP: a measure for small images
    config.data = data
    batch = 256
    steps_per_epoch = IMAGENET_TRAIN_IMAGES // batch
    config.train.update(
        batch_size=batch,
        lr=1e-4,
        steps=variant["epochs"] * steps_per_epoch,
        warmup_steps=5000,
        weight_decay=0.045,
        b1=0.9,
        b2=0.96,
        log_every=100,
        checkpoint_every=5000,
    )
    return config
