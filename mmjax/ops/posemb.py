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


def _cubic_weights(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys cubic-convolution weights for the 4 neighbours at offsets -1, 0, 1, 2; `t` in [0, 1)."""
    x = np.stack([t + 1.0, t, 1.0 - t, 2.0 - t], axis=-1)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return np.where(x <= 1.0, near, far)


def _resize_axis_bicubic(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    n = x.shape[axis]
    src = (np.arange(size, dtype=np.float64) + 0.5) * (n / size) - 0.5
    base = np.floor(src)
    weights = _cubic_weights(src - base)  # [size, 4]
    taps = np.clip(base[:, None].astype(np.int64) + np.arange(-1, 3), 0, n - 1)  # [size, 4]
    gathered = np.take(x, taps, axis=axis)  # axis is replaced by [size, 4]
    shape = [1] * gathered.ndim
    shape[axis], shape[axis + 1] = size, 4
    return np.sum(gathered * weights.reshape(shape), axis=axis + 1)


def resize_bicubic(grid_table: np.ndarray, new_grid: tuple[int, int]) -> np.ndarray:
    """Bicubic resize of a `[rows, cols, D]` table to `[*new_grid, D]`.

    Matches torch `F.interpolate(mode="bicubic", align_corners=False)` without antialiasing,
    which is what HF ViT's `interpolate_pos_encoding` uses (cubic coefficient -0.75,
    half-pixel centres, edge clamping). timm's `resample_abs_pos_embed` also uses torch
    bicubic but passes `antialias=True`, which differs when shrinking a table. Computed in float64.
    """
    x = np.asarray(grid_table, np.float64)
    x = _resize_axis_bicubic(x, int(new_grid[0]), 0)
    return _resize_axis_bicubic(x, int(new_grid[1]), 1)


def resize_position_table(table: np.ndarray, grid: tuple[int, int], new_grid: tuple[int, int]) -> np.ndarray:
    """A learned `[1, 1 + N, D]` position table (cls row first) for another patch grid.

    The cls row is kept; the `rows x cols` patch rows are resized bicubically (`resize_bicubic`).

    Returns:
      float32 `[1, 1 + new_rows * new_cols, D]`.
    """
    table = np.asarray(table)
    rows, cols = grid
    if table.ndim != 3 or table.shape[:2] != (1, 1 + rows * cols):
        raise ValueError(f"position table must be [1, 1 + {rows}*{cols}, D] for grid {grid}, got {table.shape}")
    dim = table.shape[-1]
    patches = resize_bicubic(table[0, 1:].reshape(rows, cols, dim), new_grid).reshape(-1, dim)
    return np.concatenate([table[0, :1], patches], axis=0)[None].astype(np.float32)
