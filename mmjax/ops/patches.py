"""Images <-> patch vectors, in MAE's patch order (row in patch, column in patch, channel)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

Size2D = int | tuple[int, int]


def as_pair(value: Size2D, name: str = "size") -> tuple[int, int]:
    """`16 -> (16, 16)`; `(h, w)` stays; anything else is an error naming `name`."""
    if isinstance(value, int):
        pair = (value, value)
    else:
        pair = tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) <= 0:
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return pair


def grid_shape(image_size: Size2D, patch_size: Size2D) -> tuple[int, int]:
    """The patch grid `(H / p_h, W / p_w)`, checking that the patches tile the image."""
    (h, w), (ph, pw) = as_pair(image_size, "image_size"), as_pair(patch_size, "patch_size")
    if h % ph or w % pw:
        raise ValueError(f"image size {(h, w)} is not divisible by patch_size {(ph, pw)}")
    return h // ph, w // pw


def patchify(images: jax.Array, patch_size: Size2D) -> jax.Array:
    """Cut images into flattened patches.

    Args:
      images: `[B, H, W, C]`.
      patch_size: `p` or `(p_h, p_w)`.

    Returns:
      `[B, N, p_h * p_w * C]` with `N = (H / p_h) * (W / p_w)` in row-major grid order;
      each vector is ordered (row in patch, column in patch, channel), as MAE and HF.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be [B, H, W, C], got shape {images.shape}")
    b, h, w, c = images.shape
    ph, pw = as_pair(patch_size, "patch_size")
    gh, gw = grid_shape((h, w), (ph, pw))
    x = images.reshape(b, gh, ph, gw, pw, c)
    x = jnp.transpose(x, (0, 1, 3, 2, 4, 5))
    return x.reshape(b, gh * gw, ph * pw * c)


def unpatchify(patches: jax.Array, grid: tuple[int, int], patch_size: Size2D) -> jax.Array:
    """Inverse of `patchify`.

    Args:
      patches: `[B, N, p_h * p_w * C]`.
      grid: `(H / p_h, W / p_w)`, with `N = grid[0] * grid[1]`.
      patch_size: `p` or `(p_h, p_w)`.

    Returns:
      `[B, H, W, C]`.
    """
    b, n, dim = patches.shape
    ph, pw = as_pair(patch_size, "patch_size")
    gh, gw = as_pair(grid, "grid")
    if n != gh * gw:
        raise ValueError(f"{n} patches do not fill a {gh}x{gw} grid")
    if dim % (ph * pw):
        raise ValueError(f"patch vector size {dim} is not a multiple of patch area {ph * pw}")
    c = dim // (ph * pw)
    x = patches.reshape(b, gh, gw, ph, pw, c)
    x = jnp.transpose(x, (0, 1, 3, 2, 4, 5))
    return x.reshape(b, gh * ph, gw * pw, c)
