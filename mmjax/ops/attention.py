"""The one attention entry point used by every model."""

from __future__ import annotations

import jax
import jax.numpy as jnp

IMPLEMENTATIONS = ("xla",)


def attention_mask(
    batch: int,
    q_len: int,
    kv_len: int,
    *,
    key_lengths: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    mask: jax.Array | None = None,
) -> jax.Array | None:
    """Combine the mask facts into one boolean `[B, 1 or H, Lq, Lk]` (True = may attend).

    Returns None when nothing is masked.
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
        if mask.ndim == 3:
            mask = mask[:, None]
        allowed = both(allowed, mask.astype(bool))
    return allowed


def _xla_attention(q, k, v, allowed, scale):
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) * scale
    if allowed is not None:
        logits = jnp.where(allowed, logits, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(logits, axis=-1)
    if allowed is not None:
        # Rows with no visible key come out as zeros, not a uniform average.
        probs = probs * jnp.any(allowed, axis=-1, keepdims=True)
    return jnp.einsum("bhqk,bkhd->bqhd", probs.astype(v.dtype), v)


def attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    *,
    key_lengths: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    mask: jax.Array | None = None,
    scale: float | None = None,
    impl: str = "xla",
) -> jax.Array:
    """Scaled dot-product attention; softmax in float32.

    Args:
      q: `[B, Lq, H, Dh]`.
      k, v: `[B, Lk, H, Dh]`.
      key_lengths: int `[B]`; keys at or past the length are ignored (padding).
      q_segment_ids, kv_segment_ids: int `[B, Lq]`, `[B, Lk]`; attend within a segment only.
      mask: bool `[B, Lq, Lk]` or `[B, H, Lq, Lk]`, True = may attend.
      scale: logit scale, default `Dh ** -0.5`.
      impl: implementation; one of `IMPLEMENTATIONS`.

    Returns:
      `[B, Lq, H, Dh]` in `v.dtype`. Query rows with no allowed key are zeros.
    """
    if q.ndim != 4 or k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[2:] != k.shape[2:]:
        raise ValueError(
            f"attention expects q [B, Lq, H, Dh], k and v [B, Lk, H, Dh]; got {q.shape}, {k.shape}, {v.shape}"
        )
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"attention impl must be one of {IMPLEMENTATIONS}, got {impl!r}")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    allowed = attention_mask(
        q.shape[0],
        q.shape[1],
        k.shape[1],
        key_lengths=key_lengths,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
        mask=mask,
    )
    return _xla_attention(q, k, v, allowed, scale)
