"""HF transformers `ViTMAEForPreTraining` weights and config -> mmjax MAE params and config.

Accepts both key layouts: transformers 4.x (`vit.encoder.layer.{i}.attention.attention.query`,
used by hub checkpoints) and 5.x (`vit.layers.{i}.attention.q_proj`). Every key is
accounted for: missing, unexpected or mis-shaped keys raise `CheckpointMismatchError`
listing all of them. Torch `Linear` weights are `(out, in)`; mmjax kernels are `(in, out)`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import ml_collections
import numpy as np

from mmjax.methods.mae import MAE, default_config
from mmjax.ops.posemb import sincos_2d

# 4.x name pieces -> 5.x; applied in order.
_V4_RENAMES = [
    (re.compile(r"^vit\.encoder\.layer\.(\d+)\."), r"vit.layers.\1."),
    (re.compile(r"\.attention\.attention\.query\."), ".attention.q_proj."),
    (re.compile(r"\.attention\.attention\.key\."), ".attention.k_proj."),
    (re.compile(r"\.attention\.attention\.value\."), ".attention.v_proj."),
    (re.compile(r"\.attention\.output\.dense\."), ".attention.o_proj."),
    (re.compile(r"\.intermediate\.dense\."), ".mlp.fc1."),
    (re.compile(r"\.output\.dense\."), ".mlp.fc2."),
]
# A sin-cos table matches to this absolute tolerance or is imported as learned.
_SINCOS_ATOL = 1e-5


class CheckpointMismatchError(ValueError):
    """The checkpoint's keys or shapes do not fit the model its config describes."""

    def __init__(self, missing: list[str], unexpected: list[str], mismatched: list[str]):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        parts = []
        for title, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape mismatch", mismatched),
        ):
            if items:
                parts.append(f"{title} ({len(items)}): " + ", ".join(items))
        super().__init__("checkpoint does not fit the model: " + "; ".join(parts))


def normalize_key(key: str) -> str:
    """A 4.x or 5.x ViTMAE key in the 5.x layout."""
    for pattern, replacement in _V4_RENAMES:
        key = pattern.sub(replacement, key)
    return key


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor; torch stays an optional import
        value = value.detach().cpu().float().numpy()
    return np.asarray(value, dtype=np.float32)


def config_from_hf(hf_config: Any) -> ml_collections.ConfigDict:
    """mmjax MAE method config from an HF `ViTMAEConfig` (object or its dict)."""
    c = hf_config.to_dict() if hasattr(hf_config, "to_dict") else dict(hf_config)
    if c.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"hidden_act={c['hidden_act']!r} is not supported; mmjax ViTs use exact 'gelu'")
    config = default_config()
    config.model.update(
        size=None,
        image_size=c["image_size"],
        patch_size=c["patch_size"],
        channels=c.get("num_channels", 3),
        width=c["hidden_size"],
        depth=c["num_hidden_layers"],
        heads=c["num_attention_heads"],
        mlp_dim=c["intermediate_size"],
        layer_norm_eps=c.get("layer_norm_eps", 1e-12),
        qkv_bias=c.get("qkv_bias", True),
    )
    config.decoder.update(
        width=c["decoder_hidden_size"],
        depth=c["decoder_num_hidden_layers"],
        heads=c["decoder_num_attention_heads"],
        mlp_dim=c["decoder_intermediate_size"],
    )
    config.mae.update(mask_ratio=c.get("mask_ratio", 0.75), norm_pix_loss=c.get("norm_pix_loss", False))
    return config


def _conv_as_dense(w):  # [D, C, p, p] -> [p * p * C, D] in (row, col, channel) order
    return np.transpose(w, (2, 3, 1, 0)).reshape(-1, w.shape[0])


def _identity(w):
    return w


def _plan(mae: MAE) -> dict[str, tuple[tuple[str, ...], tuple[int, ...], Callable]]:
    """5.x key -> (mmjax param path, expected HF shape, conversion)."""
    cfg, dec = mae.model_config, mae.decoder_config
    plan = {}

    def linear(hf, path, d_in, d_out, kernel_shape=None, bias_shape=None, bias=True):
        kernel_shape, bias_shape = kernel_shape or (d_in, d_out), bias_shape or (d_out,)
        plan[f"{hf}.weight"] = (
            (*path, "kernel"),
            (d_out, d_in),
            lambda w: w.T.reshape(kernel_shape),
        )
        if bias:
            plan[f"{hf}.bias"] = ((*path, "bias"), (d_out,), lambda b: b.reshape(bias_shape))

    def norm(hf: str, path: tuple[str, ...], dim: int):
        plan[f"{hf}.weight"] = ((*path, "scale"), (dim,), _identity)
        plan[f"{hf}.bias"] = ((*path, "bias"), (dim,), _identity)

    def block(hf: str, path: tuple[str, ...], dim: int, heads: int, mlp: int):
        head_dim = dim // heads
        for proj, name in (("q_proj", "query"), ("k_proj", "key"), ("v_proj", "value")):
            linear(
                f"{hf}.attention.{proj}",
                (*path, "attn", name),
                dim,
                dim,
                kernel_shape=(dim, heads, head_dim),
                bias_shape=(heads, head_dim),
                bias=cfg.qkv_bias,
            )
        linear(
            f"{hf}.attention.o_proj",
            (*path, "attn", "out"),
            dim,
            dim,
            kernel_shape=(heads, head_dim, dim),
        )
        norm(f"{hf}.layernorm_before", (*path, "norm1"), dim)
        norm(f"{hf}.layernorm_after", (*path, "norm2"), dim)
        linear(f"{hf}.mlp.fc1", (*path, "mlp", "fc1"), dim, mlp)
        linear(f"{hf}.mlp.fc2", (*path, "mlp", "fc2"), mlp, dim)

    d, n = cfg.width, cfg.num_patches
    plan["vit.embeddings.cls_token"] = (("encoder", "cls_token"), (1, 1, d), _identity)
    plan["vit.embeddings.position_embeddings"] = (
        ("encoder", "pos_embedding"),
        (1, n + 1, d),
        _identity,
    )
    plan["vit.embeddings.patch_embeddings.projection.weight"] = (
        ("encoder", "patch_embed", "kernel"),
        (d, cfg.channels, *cfg.patch_size),
        _conv_as_dense,
    )
    plan["vit.embeddings.patch_embeddings.projection.bias"] = (
        ("encoder", "patch_embed", "bias"),
        (d,),
        _identity,
    )
    for i in range(cfg.depth):
        block(f"vit.layers.{i}", ("encoder", "blocks", f"block_{i}"), d, cfg.heads, cfg.mlp_dim)
    norm("vit.layernorm", ("encoder", "norm"), d)

    dd = dec.width
    plan["decoder.mask_token"] = (("decoder", "mask_token"), (1, 1, dd), _identity)
    plan["decoder.decoder_pos_embed"] = (("decoder", "pos_embedding"), (1, n + 1, dd), _identity)
    linear("decoder.decoder_embed", ("decoder", "embed"), d, dd)
    for i in range(dec.depth):
        block(
            f"decoder.decoder_layers.{i}",
            ("decoder", "blocks", f"block_{i}"),
            dd,
            dec.heads,
            dec.mlp_dim,
        )
    norm("decoder.decoder_norm", ("decoder", "norm"), dd)
    linear("decoder.decoder_pred", ("decoder", "pred"), dd, cfg.patch_dim)
    return plan


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
    arrays = {}
    for key, value in state_dict.items():
        arrays[normalize_key(key)] = _to_numpy(value)
    config = config_from_hf(hf_config)
    mae = MAE.from_config(config)
    grid = mae.model_config.grid
    for key, section in (
        ("vit.embeddings.position_embeddings", "model"),
        ("decoder.decoder_pos_embed", "decoder"),
    ):
        if key in arrays and not _is_sincos(arrays[key], grid):
            config[section].posemb = "learned"
    mae = MAE.from_config(config)
    plan = _plan(mae)

    missing = sorted(set(plan) - set(arrays))
    unexpected = sorted(set(arrays) - set(plan))
    mismatched = sorted(
        f"{key} {arrays[key].shape} != {shape}"
        for key, (_, shape, _) in plan.items()
        if key in arrays and arrays[key].shape != shape
    )
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(missing, unexpected, mismatched)

    params: dict[str, Any] = {}
    learned = {
        "encoder": mae.model_config.posemb == "learned",
        "decoder": mae.decoder_config.posemb == "learned",
    }
    for key, (path, _, convert) in plan.items():
        if path[-1] == "pos_embedding" and not learned[path[0]]:
            continue
        node = params
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = np.ascontiguousarray(convert(arrays[key]))
    return config, params


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
