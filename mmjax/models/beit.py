"""BEiT (Bao et al. 2022): a ViT whose hidden patches enter as a learned mask token, and a
linear head over a tokenizer's vocabulary at every patch."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.models.config import ViTConfig
from mmjax.models.initializers import normal, with_axes, zeros
from mmjax.models.vit import ViTEncoder


class BEiTModel(nn.Module):
    """ViT encoder with mask tokens, then `Dense(vocab_size)` on each patch token."""

    config: ViTConfig
    vocab_size: int

    def setup(self):
        self.encoder = ViTEncoder(self.config)
        self.head = nn.Dense(
            self.vocab_size,
            dtype=self.config.compute_dtype,
            param_dtype=jnp.float32,
            kernel_init=with_axes(normal(0.02), ("embed", "vocab")),
            bias_init=with_axes(zeros, ("vocab",)),
        )

    def __call__(self, images: jax.Array, hidden: jax.Array) -> jax.Array:
        """`[B, H, W, C]` images, bool `[B, N]` hidden patches -> float32 code logits `[B, N, vocab_size]`."""
        tokens, _ = self.encoder(images, hidden=hidden)
        return self.head(tokens[:, 1:]).astype(jnp.float32)

    def encode(self, images: jax.Array) -> jax.Array:
        """Unmasked encoder: `[B, H, W, C] -> [B, 1 + N, D]`."""
        return self.encoder(images)[0]
