"""Per-tile math shared by the GPU and TPU kernels.

Logits are kept in base 2 (`s = q.k * scale * log2(e)`, `exp2`), the usual flash
trick that saves a multiply per element. The log-sum-exp saved for the backward pass
is in the same units. Rows that see no key keep `m = -inf`, `l = 0`; they finish
with output 0 and `lse = +inf`, which makes every probability of the row 0 in the
backward pass, so their gradients are 0 rather than NaN.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

LOG2E = math.log2(math.e)
NEG_INF = float("-inf")


def precision_for(dtype) -> lax.Precision:
    """Full float32 products for float32 inputs (no TF32); native for bf16/fp16."""
    return lax.Precision.HIGHEST if jnp.dtype(dtype) == jnp.float32 else lax.Precision.DEFAULT


def dot_nt(a: jax.Array, b: jax.Array, precision) -> jax.Array:
    """`a @ b.T` in float32: `[m, d] x [n, d] -> [m, n]`."""
    return lax.dot_general(a, b, (((1,), (1,)), ((), ())), precision=precision, preferred_element_type=jnp.float32)


def dot_nn(a: jax.Array, b: jax.Array, precision) -> jax.Array:
    """`a @ b` in float32: `[m, d] x [d, n] -> [m, n]`."""
    return lax.dot_general(a, b, (((1,), (0,)), ((), ())), precision=precision, preferred_element_type=jnp.float32)


def forward_tile(q, k, v, allowed, carry, *, scale: float, precision):
    """One online-softmax step over a key tile.

    Args:
      q: `[bq, D]`; k, v: `[bk, D]`.
      allowed: bool `[bq, bk]` or None (tile fully visible).
      carry: `(m [bq, 1], l [bq, 1], acc [bq, D])`, float32.

    Returns:
      The updated carry.
    """
    m_prev, l_prev, acc_prev = carry
    s = dot_nt(q, k, precision) * (scale * LOG2E)
    if allowed is not None:
        s = jnp.where(allowed, s, NEG_INF)
    m_new = jnp.maximum(m_prev, jnp.max(s, axis=1, keepdims=True))
    m_safe = jnp.where(m_new == NEG_INF, 0.0, m_new)
    p = jnp.exp2(s - m_safe)
    alpha = jnp.exp2(m_prev - m_safe)
    l_new = alpha * l_prev + jnp.sum(p, axis=1, keepdims=True)
    acc = alpha * acc_prev + dot_nn(p.astype(v.dtype), v, precision)
    return m_new, l_new, acc


def finish_forward(carry):
    """`(m, l, acc)` -> `(out [bq, D] float32, lse [bq, 1] base-2)`; empty rows -> 0, +inf."""
    m, row_sum, acc = carry
    seen = row_sum > 0.0
    safe = jnp.where(seen, row_sum, 1.0)
    out = acc / safe
    lse = jnp.where(seen, m + jnp.log2(safe), float("inf"))
    return out, lse


def dq_tile(q, k, v, do, lse, delta, allowed, *, scale: float, precision):
    """dQ contribution of one key tile.

    Args:
      q, do: `[bq, D]`; k, v: `[bk, D]`; lse, delta: `[bq, 1]` float32.
      allowed: bool `[bq, bk]` or None.

    Returns:
      float32 `[bq, D]`.
    """
    s = dot_nt(q, k, precision) * (scale * LOG2E)
    if allowed is not None:
        s = jnp.where(allowed, s, NEG_INF)
    p = jnp.exp2(s - lse)
    dp = dot_nt(do, v, precision)
    ds = p * (dp - delta)
    return dot_nn(ds.astype(k.dtype), k, precision) * scale


def dkv_tile(k, v, q, do, lse_row, delta_row, allowed_t, *, scale: float, precision):
    """dK and dV contributions of one query tile, computed key-major (no transposed products).

    Args:
      k, v: `[bk, D]`; q, do: `[bq, D]`; lse_row, delta_row: `[1, bq]` float32.
      allowed_t: bool `[bk, bq]` (the tile's mask, transposed) or None.

    Returns:
      `(dk, dv)`, float32 `[bk, D]` each.
    """
    s_t = dot_nt(k, q, precision) * (scale * LOG2E)
    if allowed_t is not None:
        s_t = jnp.where(allowed_t, s_t, NEG_INF)
    p_t = jnp.exp2(s_t - lse_row)
    dv = dot_nn(p_t.astype(do.dtype), do, precision)
    dp_t = dot_nt(v, do, precision)
    ds_t = p_t * (dp_t - delta_row)
    dk = dot_nn(ds_t.astype(q.dtype), q, precision) * scale
    return dk, dv
