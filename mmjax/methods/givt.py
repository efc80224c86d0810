"""GIVT (Tschannen et al. 2023): a transformer over a VAE's real-valued tokens with a Gaussian-mixture head.

The method is `ContinuousGenerator` (`mmjax/methods/continuous.py`); this file registers it as
`givt` with GIVT's ImageNet 256 values, which are the declared defaults of its sections
(`big_vision/configs/proj/givt/givt_imagenet2012.py`): a 16 x 16 grid of 16-channel latents,
24 blocks of 1024, a 16-component mixture, causal raster order with scale temperature 0.95 and
guidance weight 0.4 (`sample.guidance=1.4`). `givt.style=masked` is GIVT-masked (MaskGIT's
schedule with at least 30% masked in training, confidence order with choice temperature 35).
"""

from __future__ import annotations

import ml_collections

from mmjax.methods.continuous import ContinuousGenerator, continuous_config
from mmjax.methods.registry import register_method


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config, with GIVT's ImageNet 256 values."""
    return continuous_config("givt")


@register_method("givt", protocols=("generation",))
def build_givt(config: ml_collections.ConfigDict) -> ContinuousGenerator:
    return ContinuousGenerator.from_config(config)


__all__ = ["build_givt", "default_config"]
