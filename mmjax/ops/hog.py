"""Histograms of oriented gradients (HOG) per patch: MaskFeat's target (Wei et al. 2022), pure jnp, float32.

Convention (MaskFeat's `HOGLayerC`, facebookresearch/SlowFast `models/operators.py`):

1. Per channel, gradients by cross-correlation with `kx` and `ky = kx.T` over the image
   padded by reflection (1 px): `kx = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]` (`kernel="sobel"`,
   the reference) or `[[0, 0, 0], [1, 0, -1], [0, 0, 0]]` (`kernel="central"`, Dalal-Triggs).
2. Magnitude `sqrt(gx^2 + gy^2)`; orientation `atan2(gx, gy)` (the reference's argument
   order), binned as `floor(angle / pi * bins) mod bins`: `bins` unsigned orientation
   bins over 180 degrees (an angle and its opposite share a bin), hard assignment.
3. Each pixel adds its magnitude to its bin in its `cell x cell` cell (no Gaussian window).
4. Each cell's histogram of each channel is L2-normalized over its bins
   (`x / max(||x||, 1e-12)`, torch's `F.normalize`).

`hog_patches` lays the cells of each token's patch out as one vector
`[B, N, (p_h / cell) * (p_w / cell) * C * bins]`, ordered (cell row, cell col, channel, bin).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from mmjax.ops.patches import as_pair

HOG_KERNELS = ("sobel", "central")


def _kernel(kind: str) -> jax.Array:
    if kind == "sobel":
        return jnp.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
    if kind == "central":
        return jnp.array([[0.0, 0.0, 0.0], [1.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    raise ValueError(f"HOG kernel must be one of {HOG_KERNELS}, got {kind!r}")


def _correlate(padded: jax.Array, kernel: jax.Array, height: int, width: int) -> jax.Array:
    """`[B, H + 2, W + 2, C]` -> `[B, H, W, C]`: 3x3 cross-correlation as nine shifted sums."""
    out = jnp.zeros(padded.shape[:1] + (height, width) + padded.shape[3:], jnp.float32)
    for u in range(3):
        for v in range(3):
            out = out + kernel[u, v] * padded[:, u : u + height, v : v + width]
    return out


def hog_cells(images: jax.Array, cell: int = 8, bins: int = 9, kernel: str = "sobel") -> jax.Array:
    """HOG per cell: `[B, H, W, C]` -> float32 `[B, H / cell, W / cell, C, bins]`, L2-normalized over bins.

    `cell` must divide H and W.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be [B, H, W, C], got shape {images.shape}")
    batch, height, width, channels = images.shape
    if cell < 1 or height % cell or width % cell:
        raise ValueError(f"HOG cell={cell} must divide the image size {(height, width)}")
    if bins < 1:
        raise ValueError(f"HOG bins must be >= 1, got {bins}")
    x = images.astype(jnp.float32)
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    kx = _kernel(kernel)
    gx = _correlate(padded, kx, height, width)
    gy = _correlate(padded, kx.T, height, width)
    magnitude = jnp.sqrt(gx**2 + gy**2)
    phase = jnp.arctan2(gx, gy) / math.pi * bins  # in [-bins, bins]
    index = jnp.mod(jnp.floor(phase).astype(jnp.int32), bins)
    hist = jax.nn.one_hot(index, bins, dtype=jnp.float32) * magnitude[..., None]  # [B, H, W, C, bins]
    hist = hist.reshape(batch, height // cell, cell, width // cell, cell, channels, bins).sum(axis=(2, 4))
    norm = jnp.sqrt(jnp.sum(hist**2, axis=-1, keepdims=True))
    return hist / jnp.maximum(norm, 1e-12)


def hog_dim(patch_size, channels: int, cell: int, bins: int) -> int:
    """Length of one patch's HOG vector: `(p_h / cell) * (p_w / cell) * C * bins`."""
    ph, pw = as_pair(patch_size, "patch_size")
    if ph % cell or pw % cell:
        raise ValueError(f"HOG cell={cell} must divide the patch size {(ph, pw)}")
    return (ph // cell) * (pw // cell) * channels * bins


def hog_patches(images: jax.Array, patch_size, cell: int = 8, bins: int = 9, kernel: str = "sobel") -> jax.Array:
    """MaskFeat's HOG target per token: `[B, H, W, C]` -> float32 `[B, N, hog_dim]` (row-major tokens)."""
    ph, pw = as_pair(patch_size, "patch_size")
    dim = hog_dim((ph, pw), images.shape[-1], cell, bins)
    cells = hog_cells(images, cell, bins, kernel)  # [B, H/c, W/c, C, bins]
    batch, rows, cols, channels, _ = cells.shape
    per_h, per_w = ph // cell, pw // cell
    grid_h, grid_w = rows // per_h, cols // per_w
    x = cells.reshape(batch, grid_h, per_h, grid_w, per_w, channels, bins)
    x = x.transpose(0, 1, 3, 2, 4, 5, 6)
    return x.reshape(batch, grid_h * grid_w, dim)


__all__ = ["HOG_KERNELS", "hog_cells", "hog_dim", "hog_patches"]
