"""Pure-jnp attention with the same contract as the Pallas kernels (for tests)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def allowed_mask(
    batch: int,
    q_len: int,
    kv_len: int,
    *,
    key_lengths: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    mask: jax.Array | None = None,
) -> jax.Array | None:
    """All mask facts as one bool `[B or 1, H or 1, Lq, Lk]` (True = may attend); None if unmasked.

    `mask` is `[Lq, Lk]`, `[B, Lq, Lk]` or `[B or 1, H or 1, Lq, Lk]`.
    """
    allowed = None

    def both(a, b):
        return b if a is None else a & b

    if key_lengths is not None:
        valid = jnp.arange(kv_len)[None, :] < jnp.asarray(key_lengths).reshape(batch, 1)
        allowed = both(allowed, valid[:, None, None, :])
    if (q_segment_ids is None) != (kv_segment_ids is None):
        raise ValueError("q_segment_ids and kv_segment_ids must be given together")
    if q_segment_ids is not None:
        same = q_segment_ids[:, :, None] == kv_segment_ids[:, None, :]
        allowed = both(allowed, same[:, None, :, :])
    if mask is not None:
        allowed = both(allowed, as_4d_mask(mask))
    return allowed


def as_4d_mask(mask: jax.Array) -> jax.Array:
    """bool mask `[Lq, Lk]`, `[B, Lq, Lk]` or `[B, H, Lq, Lk]` -> `[B or 1, H or 1, Lq, Lk]`."""
    mask = jnp.asarray(mask).astype(bool)
    if mask.ndim == 2:
        return mask[None, None]
    if mask.ndim == 3:
        return mask[:, None]
    if mask.ndim == 4:
        return mask
    raise ValueError(f"mask must be [Lq, Lk], [B, Lq, Lk] or [B, H, Lq, Lk]; got shape {mask.shape}")


def reference_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    *,
    key_lengths: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    mask: jax.Array | None = None,
    bias: jax.Array | None = None,
    scale: float | None = None,
) -> jax.Array:
    """Masked softmax attention in float32, written out densely.

    Args:
      q: `[B, Lq, H, Dh]`; k, v: `[B, Lk, H, Dh]`.
      key_lengths: int `[B]`, keys at or past it are ignored.
      q_segment_ids, kv_segment_ids: int `[B, Lq]`, `[B, Lk]`; attend within a segment.
      mask: bool `[Lq, Lk]`, `[B, Lq, Lk]` or `[B or 1, H or 1, Lq, Lk]`, True = may attend.
      bias: float `[B or 1, H or 1, Lq, Lk]` added to the scaled logits (a relative position bias).
      scale: logit scale, default `Dh ** -0.5`.

    Returns:
      `[B, Lq, H, Dh]` in `q.dtype`; rows with no allowed key are zeros and their
      gradients are finite (zero).
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    allowed = allowed_mask(
        q.shape[0],
        q.shape[1],
        k.shape[1],
        key_lengths=key_lengths,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
        mask=mask,
    )
    logits = jnp.einsum(
        "bqhd,bkhd->bhqk",
        q.astype(jnp.float32),
        k.astype(jnp.float32),
        precision=jax.lax.Precision.HIGHEST,
    )
    logits = logits * scale
    if bias is not None:
        logits = logits + jnp.asarray(bias, jnp.float32)
    if allowed is not None:
        logits = jnp.where(allowed, logits, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(logits, axis=-1)
    if allowed is not None:
        probs = probs * jnp.any(allowed, axis=-1, keepdims=True)
    out = jnp.einsum("bhqk,bkhd->bqhd", probs, v.astype(jnp.float32), precision=jax.lax.Precision.HIGHEST)
    return out.astype(q.dtype)
