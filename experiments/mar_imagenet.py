"""MAR class-conditional ImageNet 256, the paper recipe (Li et al. 2024; LTH14/mar `main_mar.py`).

256 x 256 images -> a frozen KL-16 VAE's 16 x 16 grid of 16-channel latents (scaled by 0.2325)
-> MAR's encoder-decoder behind a 64-token class buffer (`size=base`: 12 + 12 blocks of 768;
`large`: 16 + 16 of 1024; `huge`: 20 + 20 of 1280), masked fractions from N(1, 0.25) truncated to
[0.7, 1], and a per-token MLP denoiser (MAR-B/L: 6 x 1024, MAR-H: 12 x 1536 as the README's
commands) on 4 noise draws per token over a 1000-level cosine schedule. Training: batch 2048
(the README's 32 GPUs x 64), AdamW (0.9, 0.95), lr 8e-4 (1e-4 x batch / 256) after 100 warmup
epochs, constant after, weight decay 0.02, 400 epochs, labels dropped 10%. Sampling: random
order over 256 steps (the paper's table; 64 is nearly as good), 100 respaced diffusion steps,
temperature 1.0, guidance 2.9 (B), 3.0 (L), 3.2 (H) with a linear schedule.

Deviations: the VAE is mmjax's ViT tokenizer at KL-16's latent size (MAR loads LDM's
convolutional KL-16 with KL weight 1e-6; here beta 1e-6 too); the learning rate follows mmjax's
warmup-cosine schedule instead of MAR's constant one; MAR's linear guidance grows with the
revealed fraction, mmjax's with the step; no learned variance, no dropout, no EMA of the weights.

  python -m mmjax train --config experiments/mar_imagenet.py:stage=vae --workdir gs://.../kl16
  python -m mmjax train --config experiments/mar_imagenet.py --workdir gs://.../mar_b \
      --config.mar.tokenizer_workdir=gs://.../kl16

Variants: `stage=vae|mar`, `size=base|large|huge`, `head=diffusion|gmm`, `data=imagefolder|arrayrecord`,
`path=...`, `epochs=N`. Needs accelerators.
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import mar, vae
from mmjax.train.defaults import training_sections

IMAGENET_TRAIN_IMAGES = 1_281_167
SIZES = {
    "base": (dict(width=768, depth=12, decoder_depth=12, heads=12, mlp_dim=3072), dict(width=1024, depth=6), 2.9),
    "large": (dict(width=1024, depth=16, decoder_depth=16, heads=16, mlp_dim=4096), dict(width=1024, depth=8), 3.0),
    "huge": (dict(width=1280, depth=20, decoder_depth=20, heads=16, mlp_dim=5120), dict(width=1536, depth=12), 3.2),
}


def vae_config(data: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A ViT-B/16 KL autoencoder at KL-16's latent size: 256 px -> 16 x 16 x 16, KL weight 1e-6."""
    config = training_sections(vae.default_config())
    config.model.update(size="base", image_size=256, patch_size=16, channels=3, dtype="bfloat16")
    config.vae.update(latent_dim=16, beta=1e-6, decoder_depth=12)
    config.data = data
    batch = 256
    config.train.update(
        steps=100 * (IMAGENET_TRAIN_IMAGES // batch), batch_size=batch, lr=1e-4, warmup_steps=5000, log_every=100
    )
    config.eval.protocols = ("tokenizer", "reconstruction_figure")
    return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(
        arg, stage="mar", size="base", head="diffusion", data="imagefolder", path="/data/imagenet/train", epochs=400
    )
    if variant["size"] not in SIZES:
        raise ValueError(f"variant size={variant['size']!r}: expected one of {sorted(SIZES)}")
    data = presets.imagenet(
        variant["data"], variant["path"], image_size=256, crop_scale=(0.8, 1.0), mean=(0.5,) * 3, std=(0.5,) * 3
    )
    if variant["stage"] == "vae":
        return vae_config(data)
    if variant["stage"] != "mar":
        raise ValueError(f"variant stage={variant['stage']!r}: expected 'vae' or 'mar'")
    model, head, guidance = SIZES[variant["size"]]
    config = training_sections(mar.default_config())  # MAR-B's values (mmjax/methods/mar.py)
    config.model.update(**model, dtype="bfloat16", scan=True, remat="full")
    config.mar.update(head=variant["head"], num_classes=1000, cond_dropout=0.1)
    config.mar.tokenizer_workdir = ""  # set on the command line
    config.head.update(**head)
    config.sample.update(
        guidance=guidance, per_class=2, metrics_per_class=0
    )  # the end-of-run judge is for small images
    tok = vae_config(data)
    config.tokenizer_config = ml_collections.ConfigDict({"method": tok.method, "model": tok.model, "vae": tok.vae})
    config.data = data
    batch = 2048
    steps_per_epoch = IMAGENET_TRAIN_IMAGES // batch
    config.train.update(
        batch_size=batch,
        lr=1e-4 * batch / 256,
        steps=variant["epochs"] * steps_per_epoch,
        warmup_steps=100 * steps_per_epoch,
        weight_decay=0.02,
        b1=0.9,
        b2=0.95,
        log_every=100,
        checkpoint_every=2000,
    )
    return config
