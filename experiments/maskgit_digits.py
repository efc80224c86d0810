"""MaskGIT on scikit-learn's bundled 8x8 digits, tokenizer included: minutes on 2 CPU cores.

Two runs. First the tokenizer (a VQ over 2 x 2 pixel patches: each digit becomes a 4 x 4
map of 64 codes), then MaskGIT over its codes, class-conditional on the digit label:

  python -m mmjax train --config experiments/maskgit_digits.py:stage=tokenizer --workdir /tmp/digits_vq
  python -m mmjax train --config experiments/maskgit_digits.py --workdir /tmp/digits_maskgit \
      --config.maskgit.tokenizer_workdir=/tmp/digits_vq
  python -m mmjax sample --workdir /tmp/digits_maskgit --num 16 --class 3

Variants: `stage=tokenizer|maskgit`, `steps=N` (of that stage).
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import maskgit, vq
from mmjax.train.defaults import training_sections


def tokenizer_config(steps: int = 1500) -> ml_collections.ConfigDict:
    """The VQ tokenizer's experiment config: 8 x 8 digits -> 4 x 4 codes out of 64."""
    config = training_sections(vq.default_config())
    config.model.update(size=None, image_size=8, patch_size=2, channels=1, width=64, depth=2, heads=4, mlp_dim=128)
    config.tokenizer.update(quantizer="vq", codebook="ema", vocab_size=64, code_dim=8, decoder_depth=2)
    config.data = presets.digits()
    config.train.update(steps=steps, batch_size=128, lr=2e-3, warmup_steps=50, log_every=100, checkpoint_every=500)
    config.eval.protocols = ("tokenizer", "reconstruction_figure")
    return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, stage="maskgit", steps=0)
    if variant["stage"] == "tokenizer":
        return tokenizer_config(variant["steps"] or 1500)
    if variant["stage"] != "maskgit":
        raise ValueError(f"variant stage={variant['stage']!r}: expected 'tokenizer' or 'maskgit'")
    config = training_sections(maskgit.default_config())
    config.model.update(width=64, depth=3, heads=4, mlp_dim=256, layer_norm_eps=1e-6)
    config.maskgit.update(num_classes=10, schedule="cosine", label_smoothing=0.1, cond_dropout=0.1)
    config.maskgit.tokenizer_workdir = "/tmp/digits_vq"
    tok = tokenizer_config()
    config.tokenizer_config = ml_collections.ConfigDict(
        {"method": tok.method, "model": tok.model, "tokenizer": tok.tokenizer}
    )
    config.sample.update(steps=8, choice_temperature=4.5, guidance=1.0, guidance_schedule="constant", per_class=10)
    config.data = presets.digits()
    config.train.update(
        steps=variant["steps"] or 2000,
        batch_size=128,
        lr=2e-3,
        warmup_steps=100,
        weight_decay=0.01,
        b2=0.96,
        log_every=100,
        checkpoint_every=1000,
    )
    return config
