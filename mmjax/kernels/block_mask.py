"""Block-level view of an attention mask: which tiles are empty, partial or full.

The flash kernels walk the `(query block, key block)` tiles of the logits. From the
mask facts (key lengths, segment ids, an element-wise mask) this module works out,
per tile, whether no query may see any key in it (`EMPTY`: skipped, never loaded),
some may (`PARTIAL`: the element-wise mask is applied) or all may (`FULL`: no mask
work at all). It then writes a *schedule* per query block: the key blocks to visit,
full ones first, then partial ones. The transposed schedule (per key block, the query
blocks that see it) drives the dK/dV kernels.

Everything here is plain `jnp`, so masks may be traced values inside `jit`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.kernels.reference import as_4d_mask

EMPTY, PARTIAL, FULL = 0, 1, 2

# Schedule rows are `[n_full, n_total, block_0, block_1, ...]`.
HEADER = 2


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class BlockSchedule:
    """Which tiles each kernel program visits.

    Attributes:
      forward: int32 `[Bs, Hs, nq, HEADER + width]`; row `(b, h, i)` is
        `[n_full, n_total, j_0, j_1, ...]`: the key blocks that query block `i` sees,
        the `n_full` fully visible ones first. Entries past `n_total` repeat the last
        visited block (so a pipelined kernel fetches nothing new) or are 0.
      backward: int32 `[Bs, Hs, nk, HEADER + width_t]`; the same per key block, listing
        query blocks.
    `Bs` is 1 or the batch size and `Hs` is 1 or the number of heads: the mask facts
    decide whether the schedule differs between examples or heads.
    """

    forward: jax.Array
    backward: jax.Array


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def block_states(
    q_len: int,
    kv_len: int,
    block_q: int,
    block_k: int,
    *,
    key_lengths: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    mask: jax.Array | None = None,
) -> jax.Array:
    """Classify every tile as `EMPTY`, `PARTIAL` or `FULL`.

    Args:
      q_len, kv_len: sequence lengths, multiples of `block_q` and `block_k`.
      key_lengths: int `[B]`.
      q_segment_ids, kv_segment_ids: int `[B, q_len]`, `[B, kv_len]`.
      mask: bool `[q_len, kv_len]`, `[Bm, q_len, kv_len]` or `[Bm, Hm, q_len, kv_len]` with
        `Bm` in `{1, B}`, `Hm` in `{1, H}`.

    Returns:
      int8 `[Bs, Hs, q_len // block_q, kv_len // block_k]`.

    Segments are judged by their range in each block: disjoint ranges give an empty
    tile, one shared id a full tile. That is exact for sorted (packed) segments and
    conservative (partial) otherwise, never wrong: partial tiles apply the exact mask.
    """
    if q_len % block_q or kv_len % block_k:
        raise ValueError(f"lengths {q_len}, {kv_len} must be multiples of blocks {block_q}, {block_k}")
    nq, nk = q_len // block_q, kv_len // block_k
    state = jnp.full((1, 1, nq, nk), FULL, jnp.int8)
    if key_lengths is not None:
        start = jnp.arange(nk) * block_k
        lengths = jnp.asarray(key_lengths, jnp.int32)[:, None]
        kind = jnp.where(lengths <= start, EMPTY, jnp.where(lengths >= start + block_k, FULL, PARTIAL))
        state = jnp.minimum(state, kind.astype(jnp.int8)[:, None, None, :])
    if (q_segment_ids is None) != (kv_segment_ids is None):
        raise ValueError("q_segment_ids and kv_segment_ids must be given together")
    if q_segment_ids is not None:
        qs = jnp.asarray(q_segment_ids).reshape(-1, nq, block_q)
        ks = jnp.asarray(kv_segment_ids).reshape(-1, nk, block_k)
        q_lo, q_hi = qs.min(-1)[:, :, None], qs.max(-1)[:, :, None]
        k_lo, k_hi = ks.min(-1)[:, None, :], ks.max(-1)[:, None, :]
        disjoint = (q_hi < k_lo) | (k_hi < q_lo)
        single = (q_lo == q_hi) & (k_lo == k_hi) & (q_lo == k_lo)
        kind = jnp.where(disjoint, EMPTY, jnp.where(single, FULL, PARTIAL))
        state = jnp.minimum(state, kind.astype(jnp.int8)[:, None])
    if mask is not None:
        mask = as_4d_mask(mask)
        bm, hm = mask.shape[:2]
        tiles = mask.astype(bool).reshape(bm, hm, nq, block_q, nk, block_k)
        some, every = tiles.any(axis=(3, 5)), tiles.all(axis=(3, 5))
        kind = jnp.where(every, FULL, jnp.where(some, PARTIAL, EMPTY))
        state = jnp.minimum(state, kind.astype(jnp.int8))
    return state


def _rows(state: jax.Array) -> jax.Array:
    """`[..., n, m]` tile states -> `[..., n, HEADER + width]` schedule rows."""
    m = state.shape[-1]
    # Full tiles first, then partial ones, then empty ones, each in block order.
    rank = jnp.where(state == FULL, 0, jnp.where(state == PARTIAL, 1, 2)) * m + jnp.arange(m)
    order = jnp.argsort(rank, axis=-1).astype(jnp.int32)
    n_full = (state == FULL).sum(-1, dtype=jnp.int32)
    n_total = (state != EMPTY).sum(-1, dtype=jnp.int32)
    last = jnp.take_along_axis(order, jnp.maximum(n_total - 1, 0)[..., None], axis=-1)
    order = jnp.where(jnp.arange(m) < n_total[..., None], order, jnp.where(n_total[..., None] > 0, last, 0))
    width = _pow2_at_least(HEADER + m) - HEADER  # power-of-two rows suit Triton
    order = jnp.pad(order, [(0, 0)] * (order.ndim - 1) + [(0, width - m)], mode="edge")
    return jnp.concatenate([n_full[..., None], n_total[..., None], order], axis=-1)


def make_schedule(state: jax.Array) -> BlockSchedule:
    """Build the forward and transposed schedules from `block_states` output."""
    return BlockSchedule(forward=_rows(state), backward=_rows(jnp.swapaxes(state, -1, -2)))


def max_steps(rows: jax.Array) -> int | None:
    """The most tiles any row visits when `rows` is concrete (not traced); else None."""
    try:
        counts = np.asarray(rows[..., 1])
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None
    return max(1, int(counts.max()))


def expand_block_pattern(pattern: jax.Array | np.ndarray, block_q: int, block_k: int) -> jax.Array:
    """Blow a block pattern up to an element mask.

    Args:
      pattern: bool `[..., nq, nk]`, True = the tile may attend.
      block_q, block_k: tile size.

    Returns:
      bool `[..., nq * block_q, nk * block_k]`.
    """
    pattern = jnp.asarray(pattern, bool)
    return jnp.repeat(jnp.repeat(pattern, block_q, axis=-2), block_k, axis=-1)


def block_causal_mask(q_len: int, kv_len: int, block: int) -> np.ndarray:
    """bool `[q_len, kv_len]`: token i sees token j when `j // block <= i // block`.

    The mask of block-causal generation (each frame sees itself and earlier frames).
    """
    return (np.arange(kv_len)[None, :] // block) <= (np.arange(q_len)[:, None] // block)
