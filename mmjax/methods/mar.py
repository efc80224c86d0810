"""MAR (Li et al. 2024, "Autoregressive Image Generation without Vector Quantization"): masked
autoregression over continuous tokens with a per-token diffusion head.

The method is `ContinuousGenerator` (`mmjax/methods/continuous.py`); this file registers it as
`mar` with MAR-B's ImageNet 256 recipe (LTH14/mar `main_mar.py` and its README's commands): the
KL-16 VAE's 16 x 16 x 16 latents scaled by 0.2325, an encoder-decoder of 12 + 12 blocks of 768
behind a 64-token class buffer, masked fractions from N(1, 0.25) truncated to [0.7, 1], a 6 x 1024
MLP denoiser (cosine noise schedule, 1000 training levels, 4 noise draws per token), random-order
generation (256 steps for MAR-B's evaluation) with 100 respaced diffusion steps at temperature 1.0
and guidance 2.9. `mar.head=gmm` swaps in GIVT's mixture head.

Deviations, each said where its knob is set: the denoiser learns no variance (MAR's learn_sigma),
`sample.guidance_schedule=linear` is `guidance * (t + 1) / T`, not MAR's `1 + (cfg - 1) * revealed / N`,
and there is no dropout.
"""

from __future__ import annotations

import ml_collections

from mmjax.methods.continuous import ContinuousGenerator, continuous_config
from mmjax.methods.registry import register_method

PAPER_VALUES = {
    "model": {"width": 768, "depth": 12, "decoder_depth": 12, "heads": 12, "mlp_dim": 3072, "buffer_size": 64},
    "mar": {
        "style": "masked",
        "head": "diffusion",
        "mask_ratio": "truncnorm",
        "min_mask_rate": 0.7,
        "latent_scale": 0.2325,
    },
    "sample": {"steps": 256, "order": "random", "temperature": 1.0, "guidance": 2.9, "guidance_schedule": "linear"},
}


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config, with MAR-B's ImageNet 256 values."""
    return continuous_config("mar", **PAPER_VALUES)


@register_method("mar", protocols=("generation",))
def build_mar(config: ml_collections.ConfigDict) -> ContinuousGenerator:
    return ContinuousGenerator.from_config(config)


__all__ = ["PAPER_VALUES", "build_mar", "default_config"]
