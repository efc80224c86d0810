"""Fixed sin-cos position embeddings, computed from the grid shape."""

from __future__ import annotations

import numpy as np


def sincos_1d(positions: np.ndarray, dim: int, temperature: float = 10000.0) -> np.ndarray:
    """Sin-cos embedding of scalar positions, MAE's `get_1d_sincos_pos_embed_from_grid`.

    `omega = 1 / temperature ** (arange(dim / 2) / (dim / 2))`; output `[sin | cos]`.

    Args:
      positions: any shape, flattened to `[M]`.
      dim: even embedding size.

    Returns:
      float64 `[M, dim]`.
    """
    if dim % 2:
        raise ValueError(f"sincos_1d needs an even dim, got {dim}")
    omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
    omega = 1.0 / temperature**omega
    angles = np.einsum("m,d->md", np.asarray(positions, np.float64).reshape(-1), omega)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_2d(grid: tuple[int, int], dim: int, *, cls_token: bool = False, temperature: float = 10000.0) -> np.ndarray:
    """MAE's 2-D sin-cos position embedding for a `(rows, cols)` patch grid.

    Layout `[sin_w | cos_w | sin_h | cos_h]` (the column coordinate fills the first half,
    as in facebookresearch/mae; big_vision's variant divides by `D/4 - 1` and is not
    interchangeable). Positions are in row-major grid order, matching `patchify`. Any
    grid works, so embeddings for another resolution are just `sincos_2d(new_grid, dim)`.

    Args:
      grid: `(rows, cols)`.
      dim: embedding size, a multiple of 4.
      cls_token: prepend a zero row for the cls token (MAE's convention).

    Returns:
      float32 `[rows * cols (+1), dim]`.
    """
    if dim % 4:
        raise ValueError(f"sincos_2d needs dim divisible by 4, got {dim}")
    rows, cols = grid
    grid_h, grid_w = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    emb = np.concatenate([sincos_1d(grid_w, dim // 2, temperature), sincos_1d(grid_h, dim // 2, temperature)], axis=1)
    if cls_token:
        emb = np.concatenate([np.zeros((1, dim)), emb], axis=0)
    return emb.astype(np.float32)
