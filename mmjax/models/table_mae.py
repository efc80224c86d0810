"""ReMasker's model: a masked autoencoder over the cells of a table row.

Each cell is a token: a per-column linear embedding of its (standardized) value plus a
learned column embedding (optionally plus a periodic embedding of the value: `embed`).
The encoder sees only the visible cells; the decoder puts a mask token at every hidden
cell and predicts every cell's value.

Rows differ in how many cells they show (natural missingness varies per row), so the
encoder does not use a fixed kept count (`TokenEncoder`'s `ids_keep`): it sorts each
row's visible cells first and masks the padded keys with `key_lengths`. Every visible
cell is seen, no hidden cell is, whatever the row's count. (The reference keeps a fixed
`D * (1 - ratio)` cells per batch with missing cells sorted last, so a row with few
observed cells also feeds some missing, zero-filled cells to its encoder; here it does not.)
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.masking.tokens import gather_tokens, replace_with_mask_token
from mmjax.models.config import TransformerConfig
from mmjax.models.initializers import normal, with_axes, xavier_uniform, zeros
from mmjax.models.transformer import TransformerStack, layer_norm


def visible_first(hidden: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Order each row's cells visible-first (stable).

    Args:
      hidden: bool `[B, D]`, True = hidden from the encoder.

    Returns:
      `order` int `[B, D]` (cell index at each sorted slot), `restore` int `[B, D]`
      (its inverse) and `num_visible` int `[B]`.
    """
    order = jnp.argsort(hidden.astype(jnp.int32), axis=1, stable=True)
    restore = jnp.argsort(order, axis=1)
    return order, restore, jnp.sum(~hidden, axis=1).astype(jnp.int32)


class TableMAE(nn.Module):
    """Cell tokens -> encoder over visible cells -> decoder with mask tokens -> one value per cell.

    Attributes:
      num_columns: `D`, cells per row.
      width, transformer: encoder width and blocks (their eps is every LayerNorm's).
      decoder_width, decoder_transformer: decoder width and blocks.
    """

    num_columns: int
    width: int
    transformer: TransformerConfig
    decoder_width: int
    decoder_transformer: TransformerConfig
    periodic_features: int = 0
    periodic_scale: float = 0.5

    def embed(self, values: jax.Array) -> jax.Array:
        """`[B, D]` standardized values -> `[B, D, width]` tokens (value x column kernel + column embedding).

        With `periodic_features = K > 0` each token also gets a periodic embedding of its
        value (the idea of Gorishniy et al. 2022, "On Embeddings for Numerical Features in
        Tabular Deep Learning"): `relu(W_j [cos(2 pi c_j x), sin(2 pi c_j x)] + b_j)`, with
        K learned frequencies `c_j` per column (initialized N(0, periodic_scale^2)) and a
        per-column `[2K, width]` projection `W_j`. It lets a column's token bend with the
        value (thresholds, saturation) where the linear embedding can only scale one direction.
        """
        values = values.astype(jnp.float32)
        kernel = self.param("value_kernel", with_axes(normal(0.2), (None, "embed")), (self.num_columns, self.width))
        columns = self.param(
            "column_embedding", with_axes(normal(0.02), (None, "embed")), (self.num_columns, self.width)
        )
        tokens = values[..., None] * kernel + columns
        if self.periodic_features:
            k = self.periodic_features
            freqs = self.param(
                "periodic_frequencies", with_axes(normal(self.periodic_scale), (None, None)), (self.num_columns, k)
            )
            angle = 2 * jnp.pi * values[..., None] * freqs  # [B, D, K]
            feats = jnp.concatenate([jnp.cos(angle), jnp.sin(angle)], axis=-1)  # [B, D, 2K]
            proj = self.param(
                "periodic_kernel",
                with_axes(normal((2 * k) ** -0.5), (None, None, "embed")),
                (self.num_columns, 2 * k, self.width),
            )
            bias = self.param("periodic_bias", with_axes(zeros, (None, "embed")), (self.num_columns, self.width))
            tokens = tokens + nn.relu(jnp.einsum("bdk,dkw->bdw", feats, proj) + bias)
        return tokens

    @nn.compact
    def __call__(self, values: jax.Array, hidden: jax.Array) -> jax.Array:
        """Predict every cell.

        Args:
          values: float `[B, D]`, standardized; hidden cells may hold anything finite.
          hidden: bool `[B, D]`, True = not shown to the encoder.

        Returns:
          float32 `[B, D]` predictions.
        """
        if values.shape[-1] != self.num_columns or hidden.shape != values.shape:
            raise ValueError(
                f"values and hidden must both be [B, {self.num_columns}]; got {values.shape} and {hidden.shape}"
            )
        batch = values.shape[0]
        # Hidden values never reach the encoder, not even as padded queries.
        tokens = self.embed(jnp.where(hidden, 0.0, values))
        order, restore, num_visible = visible_first(hidden)

        # Encoder: cls + the row's visible cells first, padded keys masked.
        cls = self.param("cls_token", with_axes(normal(0.02), (None, None, "embed")), (1, 1, self.width))
        x = jnp.concatenate([jnp.broadcast_to(cls, (batch, 1, self.width)), gather_tokens(tokens, order)], axis=1)
        x, _ = TransformerStack(config=self.transformer, name="encoder")(x, 1 + num_visible)
        x = layer_norm(self.transformer.layer_norm_eps, jnp.float32, "encoder_norm")(x)
        self.sow("intermediates", "encoded", x)  # [B, 1 + D, W]: cls, the visible cells, padding (when mutable)

        # Decoder: back to column order, mask tokens at hidden cells, decoder column embeddings.
        x = nn.Dense(
            self.decoder_width,
            kernel_init=with_axes(xavier_uniform(), ("embed", None)),
            bias_init=with_axes(zeros, (None,)),
            name="decoder_embed",
        )(x)
        token_shape = (1, 1, self.decoder_width)
        mask_token = self.param("mask_token", with_axes(normal(0.02), (None, None, "embed")), token_shape)
        cells = replace_with_mask_token(gather_tokens(x[:, 1:], restore), hidden, mask_token)
        positions = self.param(
            "decoder_column_embedding",
            with_axes(normal(0.02), (None, "embed")),
            (self.num_columns, self.decoder_width),
        )
        y = jnp.concatenate([x[:, :1], cells + positions], axis=1)
        y, _ = TransformerStack(config=self.decoder_transformer, name="decoder")(y)
        y = layer_norm(self.transformer.layer_norm_eps, jnp.float32, "decoder_norm")(y)
        pred = nn.Dense(
            1,
            kernel_init=with_axes(xavier_uniform(), ("embed", None)),
            bias_init=with_axes(zeros, (None,)),
            name="pred",
        )(y[:, 1:])
        return pred[..., 0].astype(jnp.float32)
