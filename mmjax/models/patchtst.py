"""PatchTST (Nie et al. 2023) masked pretraining model: channel-independent patch transformer."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.models.config import TransformerConfig
from mmjax.models.initializers import normal, with_axes, xavier_uniform, zeros
from mmjax.models.token_mae import TokenEncoder
from mmjax.ops.series import patchtst_sincos

POSITIONS = ("learned", "sincos")


class PatchTSTModel(nn.Module):
    """Patches of every variate -> linear embedding + positions -> shared transformer -> patch values.

    Channel independence: each variate's patch sequence is encoded separately with the
    same weights (the batch is `[B * V, P, D]` inside). As in PatchTST's self-supervised
    mode the encoder is dense: hidden patches are zeroed before the embedding and every
    patch is predicted by a linear head.

    Attributes:
      num_patches: P, patches per variate.
      patch_len: p, time steps per patch.
      width: token width; transformer: the blocks (depth, heads, MLP, the eps of every LayerNorm...).
      positions: `learned` (a `pos_embedding` parameter `[P, D]`) or `sincos` (HF PatchTST's fixed
        table, `mmjax.ops.series.patchtst_sincos`, no parameter).
      final_norm: LayerNorm after the last block (HF PatchTST has none).
    """

    num_patches: int
    patch_len: int
    width: int
    transformer: TransformerConfig
    positions: str
    final_norm: bool

    def setup(self):
        self.embed = nn.Dense(
            self.width,
            kernel_init=with_axes(xavier_uniform(), (None, "embed")),
            bias_init=with_axes(zeros, ("embed",)),
        )
        if self.positions == "learned":
            self.position_table = self.param(
                "pos_embedding", with_axes(normal(0.02), (None, "embed")), (self.num_patches, self.width)
            )
        elif self.positions == "sincos":
            self.position_table = jnp.asarray(patchtst_sincos(self.num_patches, self.width))
        else:
            raise ValueError(f"model.positions={self.positions!r}: expected one of {POSITIONS}")
        self.encoder = TokenEncoder(
            width=self.width, transformer=self.transformer, cls_token=False, final_norm=self.final_norm
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
                f"patches must be [B, V, {self.num_patches}, {self.patch_len}] (patches per window, patch_len); "
                f"got {patches.shape}"
            )
        if hidden is not None:
            patches = jnp.where(hidden.reshape(batch, variates, num_patches, 1), 0.0, patches)
        x = self.embed(patches.reshape(batch * variates, num_patches, patch_len)) + self.position_table
        return self.encoder(x)[0].reshape(batch, variates, num_patches, self.width)

    def __call__(self, patches: jax.Array, hidden: jax.Array | None = None) -> jax.Array:
        """Predicted patches `[B, V, P, p]` (normalized units) from `[B, V, P, p]` with `hidden` `[B, V * P]`."""
        return self.head(self.encode(patches, hidden))
