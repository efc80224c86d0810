"""The student of feature distillation (MaskDistill, MaskAlign): a ViT and a linear feature head."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.models.config import ViTConfig
from mmjax.models.initializers import with_axes, xavier_uniform, zeros
from mmjax.models.vit import ViTEncoder


class FeatureStudent(nn.Module):
    """`ViTEncoder` plus one Dense layer from the student width to the teacher's feature width.

    MaskDistill passes `hidden` (hidden patches become the mask token, every position is
    encoded); MaskAlign passes `ids_keep` (only the visible patches are encoded).
    """

    config: ViTConfig
    out_dim: int

    def setup(self):
        self.encoder = ViTEncoder(self.config)
        self.head = nn.Dense(
            self.out_dim,
            dtype=self.config.compute_dtype,
            param_dtype=jnp.float32,
            kernel_init=with_axes(xavier_uniform(), ("embed", None)),
            bias_init=with_axes(zeros, (None,)),
        )

    def __call__(
        self, images: jax.Array, hidden: jax.Array | None = None, ids_keep: jax.Array | None = None
    ) -> jax.Array:
        """`[B, H, W, C]` -> float32 `[B, N, out_dim]` (with `hidden` `[B, N]`) or `[B, K, out_dim]` (`ids_keep`)."""
        tokens, _ = self.encoder(images, ids_keep=ids_keep, hidden=hidden)
        return self.head(tokens[:, 1:]).astype(jnp.float32)

    def encode(self, images: jax.Array) -> jax.Array:
        """Unmasked encoder: `[B, H, W, C] -> [B, 1 + N, D]`."""
        return self.encoder(images)[0]
