"""Fixed-count masks from scores, and SimMIM's coarse-patch masks for dense encoders.

The helpers here turn scores into masks with a static shape:

- `select_lowest` picks a per-example number of candidates (the count may be traced);
- `mask_from_ranking` keeps a fixed number of tokens and returns the MAE index pair;
- `with_indices` adds `ids_keep` / `ids_restore` to a boolean mask with a fixed count.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from mmjax.masking.mask import Mask


def select_lowest(scores: jax.Array, candidates: jax.Array | None, counts: jax.Array | int) -> jax.Array:
    """True at the `counts[b]` candidates with the lowest scores of each example.

    With random `scores` this draws `counts` candidates uniformly without replacement.

    Args:
      scores: float `[B, N]`.
      candidates: bool `[B, N]` (None: every token is a candidate).
      counts: int, or int `[B]` (may be traced); more than the number of candidates
        selects all of them.

    Returns:
      bool `[B, N]`.
    """
    if candidates is not None:
        scores = jnp.where(candidates, scores, jnp.inf)
    order = jnp.argsort(scores, axis=-1)
    rank = jnp.argsort(order, axis=-1)
    counts = jnp.asarray(counts)
    chosen = rank < (counts[..., None] if counts.ndim else counts)
    if candidates is not None:
        chosen &= candidates
    return chosen


def mask_from_ranking(scores: jax.Array, num_visible: int) -> Mask:
    """Keep the `num_visible` lowest-scoring tokens of each example, hide the rest.

    The count form of `random_mask_from_noise` (MAE convention: `ids_keep` lists the
    visible tokens from the lowest score up).

    Args:
      scores: float `[B, N]`.
      num_visible: K, a Python int in `[0, N]`.

    Returns:
      Mask with `mask` `[B, N]`, `ids_keep` `[B, K]`, `ids_restore` `[B, N]`.
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be [B, N], got shape {scores.shape}")
    if not 0 <= num_visible <= scores.shape[1]:
        raise ValueError(f"num_visible must be in [0, {scores.shape[1]}], got {num_visible}")
    ids_shuffle = jnp.argsort(scores, axis=1).astype(jnp.int32)
    ids_restore = jnp.argsort(ids_shuffle, axis=1).astype(jnp.int32)
    return Mask(
        mask=ids_restore >= num_visible, ids_keep=ids_shuffle[:, :num_visible], ids_restore=ids_restore
    )


def with_indices(mask: jax.Array, num_visible: int) -> Mask:
    """Wrap a boolean mask whose every row shows exactly `num_visible` tokens.

    `ids_keep` lists the visible tokens in increasing index order. The caller
    guarantees the count; it is not checked (it may be traced).

    Args:
      mask: bool `[B, N]`, True = hidden.
      num_visible: K, a Python int.

    Returns:
      Mask with `mask`, `ids_keep` `[B, K]` and `ids_restore` `[B, N]`.
    """
    m = mask_from_ranking(mask.astype(jnp.float32), num_visible)
    return Mask(mask=mask, ids_keep=m.ids_keep, ids_restore=m.ids_restore)


def simmim_mask(
    key: jax.Array,
    batch_size: int,
    grid: tuple[int, int],
    mask_patch: int,
    mask_ratio: float,
) -> Mask:
    """SimMIM masking (Xie et al. 2022): random coarse mask patches over a finer token grid.

    The token grid is cut into `mask_patch x mask_patch` cells (e.g. 32 px mask patches
    over 4 px tokens: `mask_patch=8`); `ceil(cells * mask_ratio)` cells are hidden per
    example, as in the reference `MaskGenerator`. Every example hides exactly
    `ceil(cells * mask_ratio) * mask_patch**2` tokens, so the MAE indices are returned too.

    Args:
      key: PRNG key.
      batch_size: B.
      grid: token grid `(H, W)`, both divisible by `mask_patch`; N = H * W.
      mask_patch: mask-patch side in tokens (1 = token-level random masking).
      mask_ratio: fraction of cells to hide, in [0, 1].

    Returns:
      Mask with `mask` `[B, N]` (row-major over the grid), `ids_keep`, `ids_restore`.
    """
    height, width = grid
    if mask_patch < 1 or height % mask_patch or width % mask_patch:
        raise ValueError(f"grid {grid} must be divisible by mask_patch, got mask_patch={mask_patch}")
    if not 0.0 <= mask_ratio <= 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1], got {mask_ratio}")
    ch, cw = height // mask_patch, width // mask_patch
    num_cells = ch * cw
    hidden_cells = math.ceil(num_cells * mask_ratio)
    cells = select_lowest(jax.random.uniform(key, (batch_size, num_cells)), None, hidden_cells)
    cells = cells.reshape(batch_size, ch, 1, cw, 1)
    hidden = jnp.broadcast_to(cells, (batch_size, ch, mask_patch, cw, mask_patch))
    hidden = hidden.reshape(batch_size, height * width)
    return with_indices(hidden, (num_cells - hidden_cells) * mask_patch**2)
