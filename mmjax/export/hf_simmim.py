"""HF transformers `ViTForMaskedImageModeling` (SimMIM) weights <-> an mmjax SimMIM, both ways.

HF's SimMIM is a ViT with a learned mask token (`vit.embeddings.mask_token`) and a decoder of
one 1x1 convolution to `encoder_stride^2 * C` channels and a pixel shuffle: exactly SimMIM's
linear head (`head_depth=0`) once its output channels, which the shuffle reads as (channel,
row, column), are put in mmjax's (row, column, channel) patch order. The encoder learns its
position table (`posemb="learned"`) and keeps HF's layer-norm eps. HF's loss is the L1 over
the hidden patches' pixels, SimMIM's `pixels` target with `l1`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ml_collections
import numpy as np

from mmjax.export.hf_vitmae import add_hf_encoder, hf_config_dict, hf_encoder_config, hf_encoder_fields, normalize_key
from mmjax.export.plan import Entry, Plan, PlanBuilder, apply_plan, invert_plan, to_numpy
from mmjax.methods.simmim import SimMIM, default_config


def simmim_config_from_hf(hf_config: Any) -> ml_collections.ConfigDict:
    """mmjax SimMIM method config from an HF `ViTConfig` of a `ViTForMaskedImageModeling` (object or dict)."""
    c = hf_config_dict(hf_config)
    stride = c.get("encoder_stride", c["patch_size"])
    if stride != c["patch_size"]:
        raise ValueError(f"encoder_stride={stride} must equal patch_size={c['patch_size']} (one head output per patch)")
    config = default_config()
    config.model.update(size=None, posemb="learned", **hf_encoder_fields(c))
    config.simmim.head_depth = 0
    config.target.kind, config.loss.kind = "pixels", "l1"
    return config


def _shuffle_head(key: str, width: int, patch: tuple[int, int], channels: int) -> Plan:
    """The 1x1 conv before the pixel shuffle <-> the linear head.

    The shuffle reads conv output channel `c * p_h * p_w + i * p_w + j` as pixel `(i, j)` of
    channel `c`; the head's column for that pixel is `(i * p_w + j) * C + c`.
    """
    ph, pw = patch
    out = ph * pw * channels

    def weight_to_kernel(w):
        return (np.transpose(w.reshape(channels, ph, pw, width), (1, 2, 0, 3)).reshape(out, width).T,)

    def kernel_to_weight(k):
        return np.transpose(k.T.reshape(ph, pw, channels, width), (2, 0, 1, 3)).reshape(out, width, 1, 1)

    def bias_to_head(b):
        return (np.transpose(b.reshape(channels, ph, pw), (1, 2, 0)).reshape(out),)

    def head_to_bias(b):
        return np.transpose(b.reshape(ph, pw, channels), (2, 0, 1)).reshape(out)

    return {
        f"{key}.weight": Entry((("head", "kernel"),), (out, width, 1, 1), weight_to_kernel, kernel_to_weight),
        f"{key}.bias": Entry((("head", "bias"),), (out,), bias_to_head, head_to_bias),
    }


def _plan(method: SimMIM) -> Plan:
    cfg = method.model_config
    builder = PlanBuilder()
    add_hf_encoder(builder, "vit.", cfg)
    builder.tensor("vit.embeddings.mask_token", ("encoder", "mask_token"), (1, 1, cfg.width))
    return {**builder.plan, **_shuffle_head("decoder.0", cfg.width, cfg.patch_size, cfg.channels)}


def _check_convertible(method: SimMIM) -> None:
    o = method.options
    if o.head_depth or o.domain != "patches" or method.model_config.posemb != "learned":
        raise ValueError(
            f"HF ViTForMaskedImageModeling is SimMIM with a linear head, patch masking and a learned position "
            f"table; got simmim.head_depth={o.head_depth}, simmim.domain={o.domain!r}, "
            f"model.posemb={method.model_config.posemb!r}"
        )


def convert_hf_simmim(state_dict: Mapping[str, Any], hf_config: Any) -> tuple[ml_collections.ConfigDict, dict]:
    """Convert an HF `ViTForMaskedImageModeling` checkpoint into `(SimMIM config, params)`.

    Raises:
      CheckpointMismatchError: listing every missing, unexpected and mis-shaped key.
    """
    config = simmim_config_from_hf(hf_config)
    arrays = {normalize_key(key): to_numpy(value) for key, value in state_dict.items()}
    return config, apply_plan(_plan(SimMIM.from_config(config)), arrays)


def hf_simmim_config(method: SimMIM) -> dict[str, Any]:
    """The `config.json` dict of the HF `ViTConfig` of `method` as a `ViTForMaskedImageModeling` (square only)."""
    _check_convertible(method)
    return {
        "architectures": ["ViTForMaskedImageModeling"],
        "model_type": "vit",
        **hf_encoder_config(method.model_config, "ViT"),
        "encoder_stride": method.model_config.patch_size[0],
    }


def to_hf_simmim(method: SimMIM, params: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """mmjax SimMIM params -> HF 5.x `ViTForMaskedImageModeling` state dict (numpy float32) and config dict."""
    hf_config = hf_simmim_config(method)
    return invert_plan(_plan(method), params, {}), hf_config


__all__ = ["convert_hf_simmim", "hf_simmim_config", "simmim_config_from_hf", "to_hf_simmim"]
