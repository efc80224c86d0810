"""Space-time masks for video token grids `[T, H, W]` (flattened time-major: N = T * H * W)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from mmjax.masking.dense import select_lowest, with_indices
from mmjax.masking.mask import Mask, random_mask


def _check(grid: tuple[int, int, int], mask_ratio: float) -> None:
    if len(grid) != 3 or min(grid) < 1:
        raise ValueError(f"grid must be (T, H, W) with positive sizes, got {grid}")
    if not 0.0 <= mask_ratio <= 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1], got {mask_ratio}")


@partial(jax.jit, static_argnames=("batch_size", "grid", "mask_ratio"))
def tube_mask(key: jax.Array, batch_size: int, grid: tuple[int, int, int], mask_ratio: float = 0.9) -> Mask:
    """VideoMAE tube masking (Tong et al. 2022): one spatial mask repeated over time.

    `int(mask_ratio * H * W)` spatial positions are drawn per example and hidden in
    every temporal slice, so every example hides exactly `T * int(mask_ratio * H * W)`
    tokens.

    Args:
      key: PRNG key.
      batch_size: B.
      grid: token grid `(T, H, W)`.
      mask_ratio: fraction of spatial positions to hide (0.9 in VideoMAE).

    Returns:
      Mask with `mask` `[B, T * H * W]`, `ids_keep` and `ids_restore`.
    """
    _check(grid, mask_ratio)
    frames, height, width = grid
    spatial = height * width
    hidden_per_frame = int(mask_ratio * spatial)
    plane = select_lowest(jax.random.uniform(key, (batch_size, spatial)), None, hidden_per_frame)
    hidden = jnp.broadcast_to(plane[:, None, :], (batch_size, frames, spatial)).reshape(batch_size, -1)
    return with_indices(hidden, frames * (spatial - hidden_per_frame))


@partial(jax.jit, static_argnames=("batch_size", "grid", "mask_ratio"))
def frame_mask(key: jax.Array, batch_size: int, grid: tuple[int, int, int], mask_ratio: float = 0.5) -> Mask:
    """Frame (temporal) masking: hide `int(mask_ratio * T)` whole time slices per example.

    The temporal counterpart of tube masking, as studied by Feichtenhofer et al. 2022
    ("Masked Autoencoders As Spatiotemporal Learners", time-wise sampling).

    Args:
      key: PRNG key.
      batch_size: B.
      grid: token grid `(T, H, W)`.
      mask_ratio: fraction of time slices to hide.

    Returns:
      Mask with `mask` `[B, T * H * W]`, `ids_keep` and `ids_restore`.
    """
    _check(grid, mask_ratio)
    frames, height, width = grid
    hidden_frames = int(mask_ratio * frames)
    times = select_lowest(jax.random.uniform(key, (batch_size, frames)), None, hidden_frames)
    hidden = jnp.broadcast_to(times[:, :, None], (batch_size, frames, height * width)).reshape(batch_size, -1)
    return with_indices(hidden, (frames - hidden_frames) * height * width)


def spacetime_mask(key: jax.Array, batch_size: int, grid: tuple[int, int, int], mask_ratio: float = 0.9) -> Mask:
    """Space-time agnostic random masking (Feichtenhofer et al. 2022): MAE masking over all T*H*W tokens.

    Args:
      key: PRNG key.
      batch_size: B.
      grid: token grid `(T, H, W)`.
      mask_ratio: fraction of tokens to hide (0.9 in the paper).

    Returns:
      Mask with `mask` `[B, T * H * W]`, `ids_keep` and `ids_restore`.
    """
    _check(grid, mask_ratio)
    frames, height, width = grid
    return random_mask(key, batch_size, frames * height * width, mask_ratio)


@partial(jax.jit, static_argnames=("batch_size", "grid", "cell", "mask_ratio"))
def running_cell_mask(
    key: jax.Array,
    batch_size: int,
    grid: tuple[int, int, int],
    cell: tuple[int, int] = (2, 2),
    mask_ratio: float = 0.5,
) -> Mask:
    """Running-cell masking (VideoMAE V2's decoder masking, Wang et al. 2023).

    The spatial grid is cut into `cell` windows of C positions. In each window the
    hidden positions are `round(mask_ratio * C)` consecutive ones (in raster order within
    the window, cyclically) starting at `(t + offset) mod C` at time t, so the hidden
    set runs through the window over time and every position is seen over C frames.
    `offset` is drawn per example.

    Args:
      key: PRNG key.
      batch_size: B.
      grid: token grid `(T, H, W)`, H and W divisible by the cell.
      cell: window `(ch, cw)`.
      mask_ratio: fraction of each window hidden per frame.

    Returns:
      Mask with `mask` `[B, T * H * W]`, `ids_keep` and `ids_restore`.
    """
    _check(grid, mask_ratio)
    frames, height, width = grid
    ch, cw = cell
    if height % ch or width % cw:
        raise ValueError(f"grid {grid} must be divisible by cell {cell}")
    size = ch * cw
    hidden_per_cell = round(mask_ratio * size)
    offset = jax.random.randint(key, (batch_size, 1, 1, 1), 0, size)
    rows = jnp.arange(height)[:, None] % ch
    cols = jnp.arange(width)[None, :] % cw
    position = (rows * cw + cols)[None, None]
    t = jnp.arange(frames)[None, :, None, None]
    hidden = (position - t - offset) % size < hidden_per_cell
    hidden = hidden.reshape(batch_size, frames * height * width)
    visible = frames * (height // ch) * (width // cw) * (size - hidden_per_cell)
    return with_indices(hidden, visible)
