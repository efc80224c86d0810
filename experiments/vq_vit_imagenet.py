"""A ViT image tokenizer on ImageNet-1K at paper scale, for BEiT targets (BEiT v2's codebook shape).

Variants (`--config experiments/vq_vit_imagenet.py:quantizer=fsq,data=arrayrecord`):
  quantizer  vq (8192 x 32 cosine codebook, EMA updates) | fsq (levels 8,8,8,5,5,5 = 64,000 codes)
  data       imagefolder (train/<wnid>/*.JPEG) | arrayrecord (mmjax.data.write_array_record files)
  path       where the training data lives
  epochs     100 by default

BEiT v2's tokenizer reconstructs the features of a CLIP teacher; this one reconstructs pixels
(a VQGAN-style objective without the perceptual and adversarial losses). Encoder ViT-B/16,
3 decoder blocks, batch 1024, AdamW lr 5e-5 * batch / 256, (0.9, 0.99), weight decay 1e-4,
10 warmup epochs, codebook EMA decay 0.99. Needs accelerators.
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import vq
from mmjax.train.defaults import training_sections

IMAGENET_TRAIN_IMAGES = 1_281_167


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, quantizer="vq", data="imagefolder", path="/data/imagenet/train", epochs=100)
    config = training_sections(vq.default_config())
    config.model.update(size="base", image_size=224, patch_size=16, dtype="bfloat16")
    config.tokenizer.update(
        quantizer=variant["quantizer"],
        codebook="ema",
        vocab_size=8192,
        code_dim=32,
        levels=(8, 8, 8, 5, 5, 5),
        decoder_depth=3,
        ema_decay=0.99,
    )
    config.data = presets.imagenet(variant["data"], variant["path"])
    batch = 1024
    steps_per_epoch = IMAGENET_TRAIN_IMAGES // batch
    config.train.update(
        batch_size=batch,
        lr=5e-5 * batch / 256,
        steps=variant["epochs"] * steps_per_epoch,
        warmup_steps=10 * steps_per_epoch,
        weight_decay=1e-4,
        b1=0.9,
        b2=0.99,
        log_every=100,
        checkpoint_every=2000,
    )
    config.eval.protocols = ("tokenizer", "reconstruction_figure")
    return config
