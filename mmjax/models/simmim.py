"""SimMIM (Xie et al. 2022): the full ViT sees every patch, hidden ones as a learned mask token,
and one linear layer predicts each patch's raw pixels."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.models.config import ViTConfig, transformer_config
from mmjax.models.initializers import with_axes, xavier_uniform, zeros
from mmjax.models.transformer import TransformerStack, layer_norm
from mmjax.models.vit import ViTEncoder


class SimMIMModel(nn.Module):
    """ViT encoder with mask tokens and a linear pixel head.

    The head maps each token to its `p_h * p_w * C` pixels: the reference's 1x1
    convolution to `stride**2 * C` channels followed by a pixel shuffle, in MAE's
    (row, column, channel) patch order. `head_depth > 0` puts that many transformer
    blocks (the encoder's width, heads and MLP size) and a LayerNorm before it: a heavier
    head, as in the paper's prediction-head ablation (Table 3); 0 is the paper's recipe.
    `out_dim` is the target's width per token (None: the pixels, `p_h * p_w * C`; e.g. a
    HOG target's width).
    """

    config: ViTConfig
    head_depth: int = 0
    out_dim: int | None = None

    def setup(self):
        cfg = self.config
        self.encoder = ViTEncoder(cfg)
        if self.head_depth:
            self.head_blocks = TransformerStack(config=transformer_config(cfg, depth=self.head_depth))
            self.head_norm = layer_norm(cfg.layer_norm_eps, cfg.compute_dtype, None)
        self.head = nn.Dense(
            self.out_dim or self.config.patch_dim,
            dtype=self.config.compute_dtype,
            param_dtype=jnp.float32,
            kernel_init=with_axes(xavier_uniform(), ("embed", None)),
            bias_init=with_axes(zeros, (None,)),
        )

    def __call__(self, images: jax.Array, hidden: jax.Array | None) -> jax.Array:
        """`[B, H, W, C]` images, bool `[B, N]` hidden patches -> float32 `[B, N, out_dim]`.

        `hidden=None`: no token is hidden and the model has no mask token (MFM corrupts the
        image itself).
        """
        tokens, _ = self.encoder(images, hidden=hidden)
        if self.head_depth:
            tokens = self.head_norm(self.head_blocks(tokens)[0])
        return self.head(tokens[:, 1:]).astype(jnp.float32)

    def encode(self, images: jax.Array) -> jax.Array:
        """Unmasked encoder: `[B, H, W, C] -> [B, 1 + N, D]`."""
        return self.encoder(images)[0]
