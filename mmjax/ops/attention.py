"""The one attention entry point used by every model, and its dispatch.

`attention(q, k, v, ..., impl=...)` runs one of:

- `xla`: dense einsum + float32 softmax (the reference; runs everywhere).
- `cudnn`: `jax.nn.dot_product_attention(implementation='cudnn')`; GPU only.
- `pallas`: the project's flash kernels (`mmjax.kernels`): the GPU lowering on GPU,
  the block-sparse TPU lowering on TPU, the GPU lowering in interpret mode on CPU.
- `auto`: `choose_impl` picks one from the platform, dtype, head dim and mask.

Every implementation returns zeros for query rows that see no key. An additive logit `bias`
(BEiT's relative position bias) is taken by `xla` only; `cudnn` and `pallas` refuse it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

IMPLEMENTATIONS = ("xla", "cudnn", "pallas", "auto")
# The one default of every `attention_impl` field (model configs, modules, method sections).
DEFAULT_IMPLEMENTATION = "xla"

# jax.nn.dot_product_attention(implementation='cudnn') takes fp16/bf16 and these head dims.
_CUDNN_DTYPES = (jnp.bfloat16, jnp.float16)
_CUDNN_MAX_HEAD_DIM = 128


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
    """Combine the mask facts into one boolean `[B or 1, 1 or H, Lq, Lk]` (True = may attend).

    Returns None when nothing is masked.
    """
    from mmjax.kernels.reference import allowed_mask

    return allowed_mask(
        batch,
        q_len,
        kv_len,
        key_lengths=key_lengths,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
        mask=mask,
    )


def choose_impl(
    impl: str,
    *,
    platform: str,
    dtype: jnp.dtype,
    head_dim: int,
    has_segments: bool = False,
    has_mask: bool = False,
    has_bias: bool = False,
) -> str:
    """Resolve `impl` (one of `IMPLEMENTATIONS`) to a concrete implementation.

    `auto` picks:
      - with an additive `bias`: `xla` (the only implementation that takes one).
      - TPU: `pallas` (the block-sparse kernel).
      - GPU: `pallas` when there are segment ids or an element-wise mask (it skips
        empty tiles; cuDNN would need a dense bias); else `cudnn` for bf16/fp16 with a
        head dim that is a multiple of 8 up to 128; else `xla`.
      - anything else (CPU): `xla` (Pallas only runs interpreted there).

    Raises:
      ValueError: for an unknown name, or `cudnn` off GPU.
    """
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"attention impl must be one of {IMPLEMENTATIONS}, got {impl!r}")
    if impl == "cudnn" and platform != "gpu":
        raise ValueError(
            f"attention impl='cudnn' needs a GPU, but the platform is {platform!r}; use 'xla', 'pallas' or 'auto'"
        )
    if impl != "auto":
        return impl
    if has_bias:
        return "xla"
    if platform == "tpu":
        return "pallas"
    if platform == "gpu":
        if has_segments or has_mask:
            return "pallas"
        if jnp.dtype(dtype) in _CUDNN_DTYPES and head_dim % 8 == 0 and head_dim <= _CUDNN_MAX_HEAD_DIM:
            return "cudnn"
    return "xla"


def check_bias(bias: jax.Array, batch: int, heads: int, q_len: int, kv_len: int) -> None:
    """Raise a one-line error unless `bias` is `[B or 1, H or 1, Lq, Lk]`."""
    shape = tuple(bias.shape)
    if len(shape) != 4 or shape[0] not in (1, batch) or shape[1] not in (1, heads) or shape[2:] != (q_len, kv_len):
        raise ValueError(
            f"attention bias must be [B or 1, H or 1, Lq, Lk] = [{batch} or 1, {heads} or 1, {q_len}, {kv_len}]; "
            f"got {shape}"
        )


def _xla_attention(q, k, v, allowed, scale, bias=None):
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) * scale
    if bias is not None:
        logits = logits + bias.astype(jnp.float32)
    if allowed is not None:
        logits = jnp.where(allowed, logits, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(logits, axis=-1)
    if allowed is not None:
        # Rows with no visible key come out as zeros, not a uniform average.
        probs = probs * jnp.any(allowed, axis=-1, keepdims=True)
    return jnp.einsum("bhqk,bkhd->bqhd", probs.astype(v.dtype), v)


def cudnn_padded_length(length: int) -> int:
    """The length cuDNN attention runs at: odd lengths go up to a multiple of 8.

    JAX's cuDNN path refuses odd sequence lengths when it trains with a mask (MAE's
    decoder runs at 197 = 196 patches + [CLS]); the padded keys are masked out through
    `key_value_seq_lengths` and the padded query rows are dropped.
    """
    return -(-length // 8) * 8 if length % 2 else length


def _cudnn_attention(q, k, v, key_lengths, q_segment_ids, kv_segment_ids, mask, scale):
    batch, q_len, _, _ = q.shape
    kv_len = k.shape[1]
    lq, lk = cudnn_padded_length(q_len), cudnn_padded_length(kv_len)
    if lk != kv_len and key_lengths is None:
        key_lengths = jnp.full((batch,), kv_len, jnp.int32)
    dense = attention_mask(batch, q_len, kv_len, q_segment_ids=q_segment_ids, kv_segment_ids=kv_segment_ids, mask=mask)
    if (lq, lk) != (q_len, kv_len):
        q = jnp.pad(q, ((0, 0), (0, lq - q_len), (0, 0), (0, 0)))
        k, v = (jnp.pad(x, ((0, 0), (0, lk - kv_len), (0, 0), (0, 0))) for x in (k, v))
        if dense is not None:
            dense = jnp.pad(dense, ((0, 0), (0, 0), (0, lq - q_len), (0, lk - kv_len)))
    seen = None  # [B, Lq, H or 1, 1]: does the row see any key?
    lengths = None
    if key_lengths is not None:
        key_lengths = jnp.asarray(key_lengths, jnp.int32).reshape(batch)
        seen = (key_lengths > 0)[:, None, None, None]
        # cuDNN gets at least one key per example; empty examples are zeroed below.
        lengths = jnp.maximum(key_lengths, 1)
    if dense is not None:
        dense = jnp.broadcast_to(dense, (batch, *dense.shape[1:]))
        if key_lengths is not None:
            dense = dense & (jnp.arange(lk) < key_lengths[:, None])[:, None, None, :]
        rows = jnp.swapaxes(jnp.any(dense, axis=-1), 1, 2)[..., None]
        seen = rows if seen is None else seen & rows
    out = jax.nn.dot_product_attention(
        q, k, v, mask=dense, key_value_seq_lengths=lengths, scale=scale, implementation="cudnn"
    )
    out = out if seen is None else jnp.where(seen, out, jnp.zeros((), out.dtype))
    return out[:, :q_len]


def attention(
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
    impl: str = DEFAULT_IMPLEMENTATION,
) -> jax.Array:
    """Scaled dot-product attention; softmax in float32.

    Args:
      q: `[B, Lq, H, Dh]`.
      k, v: `[B, Lk, H, Dh]`.
      key_lengths: int `[B]`; keys at or past the length are ignored (padding).
      q_segment_ids, kv_segment_ids: int `[B, Lq]`, `[B, Lk]`; attend within a segment only.
      mask: bool `[B, Lq, Lk]` or `[B, H, Lq, Lk]`, True = may attend. With
        `impl='pallas'` it is also a block-sparse mask: empty tiles are skipped.
      bias: float `[B or 1, H or 1, Lq, Lk]` added to the scaled logits before the softmax
        (masked keys stay masked); `xla` only.
      scale: logit scale, default `Dh ** -0.5`.
      impl: implementation; one of `IMPLEMENTATIONS` (see the module docstring and
        `choose_impl`).

    Returns:
      `[B, Lq, H, Dh]` in `v.dtype`. Query rows with no allowed key are zeros.
    """
    if q.ndim != 4 or k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[2:] != k.shape[2:]:
        raise ValueError(
            f"attention expects q [B, Lq, H, Dh], k and v [B, Lk, H, Dh]; got {q.shape}, {k.shape}, {v.shape}"
        )
    if (q_segment_ids is None) != (kv_segment_ids is None):
        raise ValueError("q_segment_ids and kv_segment_ids must be given together")
    if bias is not None:
        check_bias(bias, q.shape[0], q.shape[2], q.shape[1], k.shape[1])
    impl = choose_impl(
        impl,
        platform=jax.default_backend(),
        dtype=q.dtype,
        head_dim=q.shape[-1],
        has_segments=q_segment_ids is not None,
        has_mask=mask is not None,
        has_bias=bias is not None,
    )
    if bias is not None and impl != "xla":
        raise ValueError(
            f"model.attention_impl={impl!r} cannot add an attention bias (relative position bias); use 'xla' or 'auto'"
        )
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if impl == "pallas":
        from mmjax.kernels import flash_attention

        return flash_attention(
            q,
            k,
            v,
            key_lengths=key_lengths,
            q_segment_ids=q_segment_ids,
            kv_segment_ids=kv_segment_ids,
            mask=mask,
            scale=scale,
        )
    if impl == "cudnn":
        return _cudnn_attention(q, k, v, key_lengths, q_segment_ids, kv_segment_ids, mask, scale)
    allowed = attention_mask(
        q.shape[0],
        q.shape[1],
        k.shape[1],
        key_lengths=key_lengths,
        q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids,
        mask=mask,
    )
    return _xla_attention(q, k, v, allowed, scale, bias)
