"""GIVT and MAR on scikit-learn's bundled 8x8 digits, their VAE included: minutes on 2 CPU cores.

Generation over continuous tokens. First a VAE (a ViT over 2 x 2 pixel patches: each digit
becomes a 4 x 4 grid of 4-channel latents), then a class-conditional generator over its latents:
GIVT (a Gaussian-mixture head; causal raster order or masked) or MAR (masked, random order,
a per-token diffusion head). All of them read the same VAE run, so their samples compare.

  python -m mmjax train --config experiments/continuous_digits.py:stage=vae --workdir /tmp/digits_vae
  python -m mmjax train --config experiments/continuous_digits.py:stage=givt --workdir /tmp/digits_givt \
      --config.givt.tokenizer_workdir=/tmp/digits_vae
  python -m mmjax train --config experiments/continuous_digits.py:stage=givt,style=masked \
      --workdir /tmp/digits_givt_masked --config.givt.tokenizer_workdir=/tmp/digits_vae
  python -m mmjax train --config experiments/continuous_digits.py:stage=mar --workdir /tmp/digits_mar \
      --config.mar.tokenizer_workdir=/tmp/digits_vae
  python -m mmjax sample --workdir /tmp/digits_mar --num 16 --class 3

Variants: `stage=vae|givt|mar`, `style=causal|masked` (givt), `steps=N` (of that stage). The head is
GIVT's mixture for givt and MAR's diffusion for mar; swap it with `--config.mar.head=gmm` (MAR's own
ablation) or `--config.givt.head=diffusion`.
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import givt, mar, vae
from mmjax.train.defaults import training_sections

STAGES = ("vae", "givt", "mar")


def vae_config(steps: int = 2000) -> ml_collections.ConfigDict:
    """The VAE's experiment config: 8 x 8 digits -> 4 x 4 latents of 4 channels."""
    config = training_sections(vae.default_config())
    config.model.update(size=None, image_size=8, patch_size=2, channels=1, width=64, depth=2, heads=4, mlp_dim=128)
    # beta 1e-3 (GIVT's 5e-5 is for 16 channels of 256 px images) keeps these latents near unit scale.
    config.vae.update(latent_dim=4, beta=1e-3, decoder_depth=2)
    config.data = presets.digits()
    config.train.update(steps=steps, batch_size=128, lr=2e-3, warmup_steps=50, log_every=100, checkpoint_every=1000)
    config.eval.protocols = ("tokenizer", "reconstruction_figure")
    return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, stage="givt", style="causal", steps=0)
    stage = variant["stage"]
    if stage not in STAGES:
        raise ValueError(f"variant stage={stage!r}: expected one of {STAGES}")
    if stage == "vae":
        return vae_config(variant["steps"] or 2000)
    config = training_sections(givt.default_config() if stage == "givt" else mar.default_config())
    section = config[stage]
    if stage == "givt":
        section.update(style=variant["style"], head="gmm", min_mask_rate=0.3)
        config.sample.update(order="confidence", choice_temperature=4.5, temperature=1.0)
        config.model.update(width=64, depth=4, heads=4, mlp_dim=256, buffer_size=1)
    else:
        section.update(head="diffusion", latent_scale=1.0)
        config.sample.update(order="random", temperature=1.0)
        config.model.update(width=64, depth=2, decoder_depth=2, heads=4, mlp_dim=256, buffer_size=4)
    section.update(num_classes=10, cond_dropout=0.1, tokenizer_workdir="/tmp/digits_vae")
    config.head.update(num_components=8, width=128, depth=2, train_steps=1000, repeats=4)
    config.sample.update(steps=8, diffusion_steps=50, guidance=1.0, guidance_schedule="constant", per_class=10)
    tok = vae_config()
    config.tokenizer_config = ml_collections.ConfigDict({"method": tok.method, "model": tok.model, "vae": tok.vae})
    config.data = presets.digits()
    config.train.update(
        steps=variant["steps"] or 3000,
        batch_size=128,
        lr=2e-3,
        warmup_steps=100,
        weight_decay=0.01,
        b2=0.95,
        log_every=100,
        checkpoint_every=1000,
    )
    return config
