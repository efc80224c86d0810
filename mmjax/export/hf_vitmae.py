"""HF transformers `ViTMAEForPreTraining` weights and config <-> mmjax MAE params and config.

Accepts every key layout found in real files: transformers 4.x (`vit.encoder.layer.{i}.attention.attention.query`,
`decoder.decoder_layers.{i}.attention.attention.query`, used by hub checkpoints), 5.x in memory
(`vit.layers.{i}.attention.q_proj`, `decoder.decoder_layers.{i}.attention.q_proj`, what mmjax
writes), and what 5.x `save_pretrained` writes to disk: 4.x names, except that the decoder
blocks come out as `decoder.decoder_encoder.layer.{i}.` (transformers renames `layers.` <->
`encoder.layer.` anywhere in a key, so saving turns `decoder_layers.` into `decoder_encoder.layer.`
and its loader turns it back). Every key is accounted for: missing, unexpected or
mis-shaped keys raise `CheckpointMismatchError` listing all of them. Torch `Linear` weights
are `(out, in)`; mmjax kernels are `(in, out)`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

import ml_collections
import numpy as np

from mmjax.export.atomic import atomic_directory
from mmjax.export.plan import (
    HF_BLOCK,
    Path,
    Plan,
    PlanBuilder,
    add_block,
    apply_plan,
    invert_plan,
    to_numpy,
)
from mmjax.methods.mae import MAE, default_config
from mmjax.models.config import ViTConfig
from mmjax.ops.posemb import sincos_2d

# 4.x name pieces -> 5.x; applied in order. `encoder.layer.{i}` is ViTMAE's `vit.` encoder or a bare HF ViT;
# `decoder_encoder.layer.{i}` is the ViTMAE decoder as transformers 5.x `save_pretrained` writes it.
_V4_RENAMES = [
    (re.compile(r"(^|\.)encoder\.layer\.(\d+)\."), r"\1layers.\2."),
    (re.compile(r"(^|\.)decoder_encoder\.layer\.(\d+)\."), r"\1decoder_layers.\2."),
    (re.compile(r"\.attention\.attention\.query\."), ".attention.q_proj."),
    (re.compile(r"\.attention\.attention\.key\."), ".attention.k_proj."),
    (re.compile(r"\.attention\.attention\.value\."), ".attention.v_proj."),
    (re.compile(r"\.attention\.output\.dense\."), ".attention.o_proj."),
    (re.compile(r"\.intermediate\.dense\."), ".mlp.fc1."),
    (re.compile(r"\.output\.dense\."), ".mlp.fc2."),
]
# A sin-cos table matches to this absolute tolerance or is imported as learned.
_SINCOS_ATOL = 1e-5


def normalize_key(key: str) -> str:
    """An HF ViT / ViTMAE key (4.x, 5.x, or as 5.x `save_pretrained` writes it) in the 5.x in-memory layout."""
    for pattern, replacement in _V4_RENAMES:
        key = pattern.sub(replacement, key)
    return key


def hf_config_dict(hf_config: Any) -> dict[str, Any]:
    """An HF config object or its dict, as a dict."""
    return hf_config.to_dict() if hasattr(hf_config, "to_dict") else dict(hf_config)


def hf_encoder_fields(hf_config: Any) -> dict[str, Any]:
    """The mmjax `model` fields of an HF ViT / ViTMAE config (object or dict); the inverse of `hf_encoder_config`."""
    c = hf_config_dict(hf_config)
    if c.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"hidden_act={c['hidden_act']!r} is not supported; mmjax ViTs use exact 'gelu'")
    return {
        "image_size": c["image_size"],
        "patch_size": c["patch_size"],
        "channels": c.get("num_channels", 3),
        "width": c["hidden_size"],
        "depth": c["num_hidden_layers"],
        "heads": c["num_attention_heads"],
        "mlp_dim": c["intermediate_size"],
        "layer_norm_eps": c.get("layer_norm_eps", 1e-12),
        "qkv_bias": c.get("qkv_bias", True),
    }


def config_from_hf(hf_config: Any) -> ml_collections.ConfigDict:
    """mmjax MAE method config from an HF `ViTMAEConfig` (object or its dict)."""
    c = hf_config_dict(hf_config)
    config = default_config()
    config.model.update(size=None, **hf_encoder_fields(c))
    config.decoder.update(
        width=c["decoder_hidden_size"],
        depth=c["decoder_num_hidden_layers"],
        heads=c["decoder_num_attention_heads"],
        mlp_dim=c["decoder_intermediate_size"],
    )
    config.mae.update(mask_ratio=c.get("mask_ratio", 0.75), norm_pix_loss=c.get("norm_pix_loss", False))
    return config


def add_hf_encoder(builder: PlanBuilder, prefix: str, cfg: ViTConfig, root: Path = ("encoder",)) -> None:
    """HF 5.x ViT encoder keys under `prefix` (`"vit."` for ViTMAE, `""` for ViTModel) -> `ViTEncoder` at `root`."""
    d, n = cfg.width, cfg.num_patches
    builder.tensor(f"{prefix}embeddings.cls_token", (*root, "cls_token"), (1, 1, d))
    builder.tensor(f"{prefix}embeddings.position_embeddings", (*root, "pos_embedding"), (1, n + 1, d))
    builder.patch_conv(
        f"{prefix}embeddings.patch_embeddings.projection", (*root, "patch_embed"), d, cfg.channels, cfg.patch_size
    )
    for i in range(cfg.depth):
        add_block(
            builder,
            f"{prefix}layers.{i}",
            (*root, "blocks", f"block_{i}"),
            HF_BLOCK,
            d,
            cfg.heads,
            cfg.mlp_dim,
            cfg.qkv_bias,
        )
    builder.norm(f"{prefix}layernorm", (*root, "norm"), d)


def _plan(mae: MAE) -> Plan:
    """5.x key -> entry, for the whole `ViTMAEForPreTraining`."""
    cfg, dec = mae.model_config, mae.decoder_config
    builder = PlanBuilder()
    add_hf_encoder(builder, "vit.", cfg)
    dd, n = dec.width, cfg.num_patches
    builder.tensor("decoder.mask_token", ("decoder", "mask_token"), (1, 1, dd))
    builder.tensor("decoder.decoder_pos_embed", ("decoder", "pos_embedding"), (1, n + 1, dd))
    builder.linear("decoder.decoder_embed", ("decoder", "embed"), cfg.width, dd)
    for i in range(dec.depth):
        add_block(
            builder,
            f"decoder.decoder_layers.{i}",
            ("decoder", "blocks", f"block_{i}"),
            HF_BLOCK,
            dd,
            dec.heads,
            dec.mlp_dim,
            cfg.qkv_bias,
        )
    builder.norm("decoder.decoder_norm", ("decoder", "norm"), dd)
    builder.linear("decoder.decoder_pred", ("decoder", "pred"), dd, cfg.patch_dim)
    return builder.plan


_POS_KEYS = {"encoder": "vit.embeddings.position_embeddings", "decoder": "decoder.decoder_pos_embed"}


def _is_sincos(table: np.ndarray, grid: tuple[int, int]) -> bool:
    expected = sincos_2d(grid, table.shape[-1], cls_token=True)
    return table.shape[1:] == expected.shape and np.allclose(table[0], expected, atol=_SINCOS_ATOL)


def convert_hf_vitmae(
    state_dict: Mapping[str, Any], hf_config: Any
) -> tuple[ml_collections.ConfigDict, dict[str, Any]]:
    """Convert an HF ViTMAEForPreTraining checkpoint.

    Position tables that equal MAE's fixed sin-cos embedding become `posemb="sincos2d"`
    (no parameter); any other table is kept as a learned parameter.

    Args:
      state_dict: key -> array (numpy or torch), 4.x or 5.x key names.
      hf_config: `ViTMAEConfig` or its dict.

    Returns:
      `(config, params)`: an mmjax MAE method config and its params pytree (numpy float32).

    Raises:
      CheckpointMismatchError: listing every missing, unexpected and mis-shaped key.
    """
    arrays = {normalize_key(key): to_numpy(value) for key, value in state_dict.items()}
    config = config_from_hf(hf_config)
    grid = MAE.from_config(config).model_config.grid
    for section, key in (("model", _POS_KEYS["encoder"]), ("decoder", _POS_KEYS["decoder"])):
        if key in arrays and not _is_sincos(arrays[key], grid):
            config[section].posemb = "learned"
    mae = MAE.from_config(config)
    skip = [key for root, key in _POS_KEYS.items() if _posemb(mae, root) != "learned"]
    return config, apply_plan(_plan(mae), arrays, skip=skip)


def _posemb(mae: MAE, root: str) -> str:
    return mae.model_config.posemb if root == "encoder" else mae.decoder_config.posemb


def hf_encoder_config(config: ViTConfig, model_name: str) -> dict[str, Any]:
    """The encoder fields HF's `ViTConfig` and `ViTMAEConfig` share (square images and patches only).

    An encoder with BEiT's options (no absolute table, relative bias, layer scale, no key
    bias) has no HF ViT counterpart: it is refused here (`mmjax.export.hf_beit` exports it).
    """
    beit = {"model.posemb": ("none",), "model.rel_pos_bias": ("shared", "layer"), "model.key_bias": (False,)}
    values = {
        "model.posemb": config.posemb,
        "model.rel_pos_bias": config.rel_pos_bias,
        "model.key_bias": config.key_bias or not config.qkv_bias,  # without any qkv bias it changes nothing
    }
    used = [f"{field}={values[field]!r}" for field, kinds in beit.items() if values[field] in kinds]
    used += [f"model.layer_scale={config.layer_scale}"] if config.layer_scale else []
    if used:
        raise ValueError(f"HF {model_name} has no {', '.join(used)}; export it with mmjax.export.hf_beit")
    for field, value in (("model.image_size", config.image_size), ("model.patch_size", config.patch_size)):
        if value[0] != value[1]:
            raise ValueError(f"HF {model_name} needs square {field}; got {value}")
    return {
        "image_size": config.image_size[0],
        "patch_size": config.patch_size[0],
        "num_channels": config.channels,
        "hidden_size": config.width,
        "num_hidden_layers": config.depth,
        "num_attention_heads": config.heads,
        "intermediate_size": config.mlp_dim,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "layer_norm_eps": config.layer_norm_eps,
        "qkv_bias": config.qkv_bias,
    }


def hf_vitmae_config(mae: MAE) -> dict[str, Any]:
    """The `config.json` dict of an HF `ViTMAEConfig` describing `mae` (square images and patches only)."""
    dec = mae.decoder_config
    return {
        "architectures": ["ViTMAEForPreTraining"],
        "model_type": "vit_mae",
        **hf_encoder_config(mae.model_config, "ViTMAE"),
        "decoder_hidden_size": dec.width,
        "decoder_num_hidden_layers": dec.depth,
        "decoder_num_attention_heads": dec.heads,
        "decoder_intermediate_size": dec.mlp_dim,
        "mask_ratio": mae.mask_ratio,
        "norm_pix_loss": mae.norm_pix_loss,
    }


def to_hf_vitmae(mae: MAE, params: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """mmjax MAE params -> HF 5.x `ViTMAEForPreTraining` state dict (numpy float32) and config dict.

    Fixed `sincos2d` position tables are written out as the `[1, 1 + N, D]` table mmjax adds,
    so the HF model computes the same function; `convert_hf_vitmae` recognises them on the way back.
    """
    cfg, dec = mae.model_config, mae.decoder_config
    hf_config = hf_vitmae_config(mae)  # checks the shape constraints before any work
    fixed = {}
    for root, key in _POS_KEYS.items():
        if _posemb(mae, root) != "learned":
            width = cfg.width if root == "encoder" else dec.width
            fixed[key] = sincos_2d(cfg.grid, width, cls_token=True)[None]
    return invert_plan(_plan(mae), params, fixed), hf_config


def load_hf_vitmae(
    directory: str | os.PathLike,
) -> tuple[ml_collections.ConfigDict, dict[str, Any]]:
    """Convert a local HF checkpoint directory (`config.json` + `model.safetensors`); no network."""
    try:
        from safetensors.numpy import load_file
    except ImportError as err:  # pragma: no cover - safetensors ships with transformers
        raise ImportError("reading HF checkpoints needs the 'safetensors' package") from err
    with open(os.path.join(directory, "config.json")) as f:
        hf_config = json.load(f)
    weights = os.path.join(directory, "model.safetensors")
    if not os.path.exists(weights):
        raise FileNotFoundError(f"{weights} not found; save the HF model with safe_serialization=True")
    return convert_hf_vitmae(load_file(weights), hf_config)


def save_hf_vitmae(mae: MAE, params: Mapping[str, Any], out: str | os.PathLike, force: bool = False) -> str:
    """Write `config.json` and `model.safetensors` (HF 5.x key names) to `out` atomically.

    Loads with `transformers.ViTMAEForPreTraining.from_pretrained(out)`. Needs `safetensors`
    only (no torch); `load_hf_vitmae(out)` reads it back bitwise.
    """
    from safetensors.numpy import save_file

    state, hf_config = to_hf_vitmae(mae, params)
    with atomic_directory(out, force) as tmp:
        save_file(state, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(hf_config, f, indent=2)
    return os.fspath(out)
