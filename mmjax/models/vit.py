"""ViT encoder that can run on all patches or on the visible subset only (MAE)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.masking.tokens import gather_tokens, replace_with_mask_token
from mmjax.models.config import ViTConfig, transformer_config
from mmjax.models.initializers import constant, normal, with_axes, xavier_uniform, zeros
from mmjax.models.transformer import RelativePositionBias, TransformerStack, layer_norm
from mmjax.ops.patches import patchify
from mmjax.ops.posemb import sincos_2d
from mmjax.ops.relative_position import relative_position_entries, sequence_relative_index


def position_embedding(module: nn.Module, kind: str, grid: tuple[int, int], dim: int, name: str) -> jax.Array:
    """`[1, 1 + N, D]` position table with a cls row first (zeros for sincos, as MAE).

    `sincos2d` is a constant; `learned` is a parameter `name` initialised to the same table.
    """
    table = sincos_2d(grid, dim, cls_token=True)[None]
    if kind == "sincos2d":
        return jnp.asarray(table)
    return module.param(name, with_axes(constant(table), (None, None, "embed")), table.shape, jnp.float32)


def check_images(images: jax.Array, config: ViTConfig) -> None:
    """Fail early, naming the config fields, when images do not fit the model."""
    expected = (*config.image_size, config.channels)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise ValueError(
            f"images must be [B, {expected[0]}, {expected[1]}, {expected[2]}] "
            f"(model.image_size={config.image_size}, model.channels={config.channels}); got {images.shape}"
        )


def has_cls_token(params: Mapping[str, Any]) -> bool:
    """Whether `ViTEncoder` params have a `cls_token` (I-JEPA's encoders have none)."""
    return "cls_token" in params


class ViTEncoder(nn.Module):
    """Patch embedding, position embedding, cls token, pre-LN blocks, final LayerNorm.

    The patch embedding is a Linear over MAE-ordered patch vectors, which is the same
    map as a stride-p convolution and gets the same xavier init as MAE's flattened conv.
    `cls_token=False` (I-JEPA) encodes the patch tokens alone: no cls parameter, no cls row.
    BEiT's options come from the config: `posemb="none"` adds no absolute position table;
    `rel_pos_bias="shared"` adds one learned relative bias (`rel_pos_bias/table`) to every
    block's logits, `"layer"` gives each block its own; both follow `ids_keep`.
    It returns `(tokens, out)` as big_vision's ViT: `out` names the intermediates.
    """

    config: ViTConfig
    cls_token: bool = True
    drop_path: float = 0.0  # stochastic depth of the last block (`TransformerStack`), on with a `drop_path` rng

    @nn.compact
    def __call__(
        self,
        images: jax.Array,
        ids_keep: jax.Array | None = None,
        hidden: jax.Array | None = None,
        key_lengths: jax.Array | None = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Encode images.

        Args:
          images: `[B, H, W, C]`.
          ids_keep: int `[B, K]`; when given, only these patches are encoded (MAE).
          hidden: bool `[B, N]`; when given, hidden patches are replaced by a learned
            `mask_token` before the position embedding is added (SimMIM). The parameter
            exists only in models initialised with `hidden`.
          key_lengths: int `[B]`; when given, attention ignores keys at or past this
            index of the `[cls, tokens]` sequence (of the tokens without a cls token; padded
            `ids_keep`, as I-JEPA's contexts).

        Returns:
          `(tokens, out)`: tokens `[B, 1 + K, D]` (or `[B, 1 + N, D]`), cls token first, after
          the final LayerNorm; without a cls token `[B, K, D]` (or `[B, N, D]`). `out["encoded"]`
          is the same tokens; `out["block{i}"]` block i's output (1-based, same rows, before any
          LayerNorm; unrolled encoders only).
        """
        cfg = self.config
        check_images(images, cfg)
        dtype = cfg.compute_dtype
        x = nn.Dense(
            cfg.width,
            dtype=dtype,
            param_dtype=jnp.float32,
            kernel_init=with_axes(xavier_uniform(), (None, "embed")),
            bias_init=with_axes(zeros, ("embed",)),
            name="patch_embed",
        )(patchify(images.astype(dtype), cfg.patch_size))
        if hidden is not None:
            token = self.param("mask_token", with_axes(normal(0.02), (None, None, "embed")), (1, 1, cfg.width))
            x = replace_with_mask_token(x, hidden, token)
        pos = (
            None if cfg.posemb == "none" else position_embedding(self, cfg.posemb, cfg.grid, cfg.width, "pos_embedding")
        )
        if pos is not None:
            x = x + pos[:, 1:]
        if ids_keep is not None:
            x = gather_tokens(x, ids_keep)
        x = x.astype(jnp.float32)
        if self.cls_token:
            cls = self.param("cls_token", with_axes(normal(0.02), (None, None, "embed")), (1, 1, cfg.width))
            if pos is not None:
                cls = cls + pos[:, :1]
            x = jnp.concatenate([jnp.broadcast_to(cls, (x.shape[0], 1, cfg.width)), x], axis=1)
        rel_index = bias = None
        entries = relative_position_entries(cfg.grid)
        if cfg.rel_pos_bias != "none":
            rel_index = sequence_relative_index(cfg.grid, ids_keep, self.cls_token)
        if cfg.rel_pos_bias == "shared":
            bias = RelativePositionBias(entries=entries, heads=cfg.heads, name="rel_pos_bias")(rel_index)
        stack = transformer_config(
            cfg,
            key_bias=cfg.key_bias,
            layer_scale=cfg.layer_scale,
            rel_pos_entries=entries if cfg.rel_pos_bias == "layer" else 0,
            drop_path=self.drop_path,
        )
        x, out = TransformerStack(config=stack, name="blocks")(x, key_lengths, bias, rel_index)
        x = layer_norm(cfg.layer_norm_eps, jnp.float32, "norm")(x)
        return x, {**out, "encoded": x}
