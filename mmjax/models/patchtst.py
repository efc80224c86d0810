"""PatchTST (Nie et al. 2023) masked pretraining model: channel-independent patch transformer."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.models.initializers import normal, with_axes, xavier_uniform, zeros
from mmjax.models.token_mae import TokenEncoder
from mmjax.ops.attention import DEFAULT_IMPLEMENTATION


class PatchTSTModel(nn.Module):
    """Patches of every variate -> linear embedding + learned positions -> shared transformer -> patch values.

    Channel independence: each variate's patch sequence is encoded separately with the
    same weights (the batch is `[B * V, P, D]` inside). As in PatchTST's self-supervised
    mode the encoder is dense: hidden patches are zeroed before the embedding and every
    patch is predicted by a linear head.

    Attributes:
      num_patches: P, patches per variate.
      patch_len: p, time steps per patch.
      width, depth, heads, mlp_dim: transformer size.
      attention_impl: `mmjax.ops.attention` implementation of every block.
    """

    num_patches: int
    patch_len: int
    width: int
    depth: int
    heads: int
    mlp_dim: int
    attention_impl: str = DEFAULT_IMPLEMENTATION

    def setup(self):
        self.embed = nn.Dense(
            self.width,
            kernel_init=with_axes(xavier_uniform(), (None, "embed")),
            bias_init=with_axes(zeros, ("embed",)),
        )
        self.positions = self.param(
            "pos_embedding", with_axes(normal(0.02), (None, "embed")), (self.num_patches, self.width)
        )
        self.encoder = TokenEncoder(
            self.width, self.depth, self.heads, self.mlp_dim, cls_token=False, attention_impl=self.attention_impl
        )
        self.head = nn.Dense(
            self.patch_len,
            kernel_init=with_axes(xavier_uniform(), ("embed", None)),
            bias_init=with_axes(zeros, (None,)),
        )

    def encode(self, patches: jax.Array, hidden: jax.Array | None = None) -> jax.Array:
        """`[B, V, P, p]` normalized patches, bool `[B, V * P]` hidden -> tokens `[B, V, P, D]`."""
        batch, variates, num_patches, patch_len = patches.shape
        if (num_patches, patch_len) != (self.num_patches, self.patch_len):
            raise ValueError(
                f"patches must be [B, V, {self.num_patches}, {self.patch_len}] (window / patch_len, patch_len); "
                f"got {patches.shape}"
            )
        if hidden is not None:
            patches = jnp.where(hidden.reshape(batch, variates, num_patches, 1), 0.0, patches)
        x = self.embed(patches.reshape(batch * variates, num_patches, patch_len)) + self.positions
        return self.encoder(x).reshape(batch, variates, num_patches, self.width)

    def __call__(self, patches: jax.Array, hidden: jax.Array | None = None) -> jax.Array:
        """Predicted patches `[B, V, P, p]` (normalized units) from `[B, V, P, p]` with `hidden` `[B, V * P]`."""
        return self.head(self.encode(patches, hidden))
