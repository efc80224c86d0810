"""Moving tokens between the full sequence and the visible subset."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gather_tokens(tokens: jax.Array, ids: jax.Array) -> jax.Array:
    """Pick tokens by index per example.

    Args:
      tokens: `[B, N, D]`.
      ids: int `[B, K]` (e.g. `Mask.ids_keep`).

    Returns:
      `[B, K, D]`.
    """
    return jnp.take_along_axis(tokens, ids[:, :, None], axis=1)


def restore_with_mask_tokens(visible: jax.Array, mask_token: jax.Array, ids_restore: jax.Array) -> jax.Array:
    """Append mask tokens after the visible ones and unshuffle to the original order.

    Args:
      visible: `[B, K, D]`, tokens in `ids_keep` order.
      mask_token: `[D]` (or broadcastable to `[1, 1, D]`).
      ids_restore: int `[B, N]`.

    Returns:
      `[B, N, D]`: visible tokens at their positions, `mask_token` elsewhere.
    """
    batch, keep, dim = visible.shape
    num_tokens = ids_restore.shape[1]
    fill = jnp.broadcast_to(jnp.reshape(mask_token, (1, 1, dim)).astype(visible.dtype), (batch, num_tokens - keep, dim))
    return gather_tokens(jnp.concatenate([visible, fill], axis=1), ids_restore)


def replace_with_mask_token(tokens: jax.Array, hidden: jax.Array, mask_token: jax.Array) -> jax.Array:
    """Dense-encoder masking (SimMIM): hidden tokens become `mask_token`, the rest stay.

    Args:
      tokens: `[B, N, D]`.
      hidden: bool `[B, N]`, True = hidden.
      mask_token: `[D]` (or broadcastable to `[1, 1, D]`).

    Returns:
      `[B, N, D]` in `tokens.dtype`.
    """
    token = jnp.reshape(mask_token, (1, 1, tokens.shape[-1])).astype(tokens.dtype)
    return jnp.where(hidden[..., None], token, tokens)
