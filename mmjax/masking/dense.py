"""Fixed-count masks from scores, and SimMIM's coarse-patch masks for dense encoders.

The helpers here turn scores into masks with a static shape:

- `select_lowest` picks a per-example number of candidates (the count may be traced);
- `mmjax.masking.mask_from_ranking` (in mask.py) keeps a fixed number of tokens with MAE's index pair;
- `with_indices` adds `ids_keep` / `ids_restore` to a boolean mask with a fixed count;
- `fixed_count_mask` tops up or trims a variable-count mask to a fixed count (sparse encoders).
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

from mmjax.masking.mask import Mask, inverse_permutation, mask_from_ranking


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
    batch, num_tokens = scores.shape
    rows = jnp.arange(batch)[:, None]
    if isinstance(counts, int):
        # A static count: top_k is much cheaper than a full sort on CPU.
        count = min(max(counts, 0), num_tokens)
        chosen = jnp.zeros(scores.shape, bool)
        if count:
            chosen = chosen.at[rows, jax.lax.top_k(-scores, count)[1]].set(True)
    else:
        rank = inverse_permutation(jnp.argsort(scores, axis=-1))
        chosen = rank < jnp.asarray(counts)[..., None]
    if candidates is not None:
        chosen &= candidates
    return chosen


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
    # Visible tokens first in index order, then hidden ones in index order: ranks by cumsum.
    visible = ~mask
    ids_restore = jnp.where(
        visible, jnp.cumsum(visible, axis=1) - 1, num_visible + jnp.cumsum(mask, axis=1) - 1
    ).astype(jnp.int32)
    # Clip so that a wrong count cannot scatter out of range.
    ids_restore = jnp.clip(ids_restore, 0, mask.shape[1] - 1)
    ids_shuffle = inverse_permutation(ids_restore)
    return Mask(mask=mask, ids_keep=ids_shuffle[:, :num_visible], ids_restore=ids_restore)


@partial(jax.jit, static_argnames=("batch_size", "grid", "mask_patch", "mask_ratio"))
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
    example, as in the reference `MaskGenerator`. When `mask_patch` divides the grid,
    every example hides exactly `ceil(cells * mask_ratio) * mask_patch**2` tokens and the
    MAE indices are returned too. Otherwise the cells are laid from the top-left corner,
    those on the bottom and right edges are cut by the grid's border, and the hidden
    count varies between examples (no indices).

    Args:
      key: PRNG key.
      batch_size: B.
      grid: token grid `(H, W)`; N = H * W.
      mask_patch: mask-patch side in tokens (1 = token-level random masking).
      mask_ratio: fraction of cells to hide, in [0, 1].

    Returns:
      Mask with `mask` `[B, N]` (row-major over the grid), and `ids_keep`, `ids_restore`
      when the cells tile the grid.
    """
    height, width = grid
    if mask_patch < 1:
        raise ValueError(f"mask_patch must be a positive number of tokens, got {mask_patch}")
    if not 0.0 <= mask_ratio <= 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1], got {mask_ratio}")
    ch, cw = -(-height // mask_patch), -(-width // mask_patch)
    num_cells = ch * cw
    hidden_cells = math.ceil(num_cells * mask_ratio)
    cells = select_lowest(jax.random.uniform(key, (batch_size, num_cells)), None, hidden_cells)
    cells = cells.reshape(batch_size, ch, 1, cw, 1)
    hidden = jnp.broadcast_to(cells, (batch_size, ch, mask_patch, cw, mask_patch))
    hidden = hidden.reshape(batch_size, ch * mask_patch, cw * mask_patch)[:, :height, :width]
    hidden = hidden.reshape(batch_size, height * width)
    if height % mask_patch or width % mask_patch:
        return Mask(mask=hidden)
    return with_indices(hidden, (num_cells - hidden_cells) * mask_patch**2)


def fixed_count_mask(key: jax.Array, hidden: jax.Array, num_visible: int) -> Mask:
    """Adapt a variable-count mask to exactly `num_visible` visible tokens per example (for sparse encoders).

    A sparse encoder (MAE) gathers a static `K` visible tokens, so masks whose count varies
    (BEiT's block-wise mask, SimMIM cells cut at a grid edge, ...) are topped up or trimmed:
    a row showing more than `K` tokens hides random extra visible ones; a row showing fewer
    shows random hidden ones again. Every token the input mask shows stays visible when the
    row has at most `K` of them, and every token it hides stays hidden when the row has at
    least `K` visible. One `mask_from_ranking` over scores `noise` (visible tokens) and
    `1 + noise` (hidden ones): the `K` lowest are all visible tokens first, in random order.

    Args:
      key: PRNG key for the random top-up / trim.
      hidden: bool `[B, N]`, True = hidden (any count per row).
      num_visible: K, a Python int in `[0, N]` (e.g. `num_visible_tokens(N, ratio)`).

    Returns:
      Mask with `mask` `[B, N]` (exactly `N - K` True per row), `ids_keep` `[B, K]`,
      `ids_restore` `[B, N]` in the MAE convention (`ids_keep` from the lowest score up).
    """
    from_hidden = hidden.astype(jnp.float32)
    noise = jax.random.uniform(key, hidden.shape)
    return mask_from_ranking(noise + from_hidden, num_visible)
