"""GIVT class-conditional ImageNet 256, the paper recipe (Tschannen et al. 2023; big_vision
`configs/proj/givt/givt_imagenet2012.py`).

256 x 256 images -> a frozen beta-VAE's 16 x 16 grid of 16-channel latents (beta 5e-5; 1e-5 for
the large model) -> a transformer over the projected latents with a 16-component Gaussian
mixture per token. Default model: 24 blocks of 1024, 16 heads, MLP 4096 (`size=base`: 12 of 768;
`size=large`: 48 of 1536). Training: batch 8192, 500 epochs, Adam (0.9, 0.95), lr 1e-3 with 10%
warmup and cosine decay, weight decay 1e-4 (0 for the masked style), gradient clip 1.0, labels
dropped 10% of the time. Sampling: causal with scale temperature 0.95 and guidance weight 0.4
(`sample.guidance=1.4`); masked with MaskGIT's cosine schedule, choice temperature 35, no guidance.

The paper's VAE is convolutional; mmjax's is the ViT tokenizer (`mmjax.methods.vae`) at the same
latent size, trained here with a ViT-B/16 encoder, 12 decoder blocks, batch 256, lr 1e-4 for 100
epochs (our choice: the paper does not list its VAE schedule in the config). Dropout (0.2 causal,
0.4 masked) is left out.

  python -m mmjax train --config experiments/givt_imagenet.py:stage=vae --workdir gs://.../vae256
  python -m mmjax train --config experiments/givt_imagenet.py --workdir gs://.../givt256 \
      --config.givt.tokenizer_workdir=gs://.../vae256

Variants: `stage=vae|givt`, `style=causal|masked`, `size=base|default|large`,
`data=imagefolder|arrayrecord`, `path=...`, `epochs=N`. Needs accelerators.
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import givt, vae
from mmjax.train.defaults import training_sections

IMAGENET_TRAIN_IMAGES = 1_281_167
SIZES = {
    "base": dict(width=768, depth=12, heads=12, mlp_dim=3072),
    "default": dict(width=1024, depth=24, heads=16, mlp_dim=4096),
    "large": dict(width=1536, depth=48, heads=16, mlp_dim=8192),
}


def vae_config(data: ml_collections.ConfigDict, beta: float) -> ml_collections.ConfigDict:
    """A ViT-B/16 beta-VAE: 256 px -> 16 x 16 latents of 16 channels."""
    config = training_sections(vae.default_config())
    config.model.update(size="base", image_size=256, patch_size=16, channels=3, dtype="bfloat16")
    config.vae.update(latent_dim=16, beta=beta, decoder_depth=12)
    config.data = data
    batch = 256
    config.train.update(
        steps=100 * (IMAGENET_TRAIN_IMAGES // batch), batch_size=batch, lr=1e-4, warmup_steps=5000, log_every=100
    )
    config.eval.protocols = ("tokenizer", "reconstruction_figure")
    return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(
        arg, stage="givt", style="causal", size="default", data="imagefolder", path="/data/imagenet/train", epochs=500
    )
    if variant["size"] not in SIZES:
        raise ValueError(f"variant size={variant['size']!r}: expected one of {sorted(SIZES)}")
    if variant["style"] not in ("causal", "masked"):
        raise ValueError(f"variant style={variant['style']!r}: expected 'causal' or 'masked'")
    data = presets.imagenet(
        variant["data"], variant["path"], image_size=256, crop_scale=(0.8, 1.0), mean=(0.5,) * 3, std=(0.5,) * 3
    )
    beta = 1e-5 if variant["size"] == "large" else 5e-5
    if variant["stage"] == "vae":
        return vae_config(data, beta)
    if variant["stage"] != "givt":
        raise ValueError(f"variant stage={variant['stage']!r}: expected 'vae' or 'givt'")
    masked = variant["style"] == "masked"
    config = training_sections(givt.default_config())
    config.model.update(**SIZES[variant["size"]], dtype="bfloat16", scan=True, remat="full")
    config.givt.update(style=variant["style"], head="gmm", num_classes=1000, cond_dropout=0.1, min_mask_rate=0.3)
    config.givt.tokenizer_workdir = ""  # set on the command line
    tok = vae_config(data, beta)
    config.tokenizer_config = ml_collections.ConfigDict({"method": tok.method, "model": tok.model, "vae": tok.vae})
    if masked:
        config.sample.update(order="confidence", steps=16, choice_temperature=35.0, guidance=1.0)
    config.sample.update(per_class=2, metrics_per_class=0)  # the end-of-run judge is for small images
    config.data = data
    batch = 8192
    steps = variant["epochs"] * (IMAGENET_TRAIN_IMAGES // batch)
    config.train.update(
        batch_size=batch,
        lr=1e-3,
        steps=steps,
        warmup_steps=steps // 10,
        weight_decay=0.0 if masked else 1e-4,
        b1=0.9,
        b2=0.95,
        grad_clip=1.0,
        log_every=50,
        checkpoint_every=1000,
    )
    return config
