"""Videos <-> tubelet vectors, their position embeddings (3-D separable or VideoMAE's flat table), norm-pix targets."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.ops.posemb import sincos_1d

Size3D = int | tuple[int, int, int]


def as_triple(value: Size3D, name: str = "tubelet_size") -> tuple[int, int, int]:
    """`2 -> (2, 2, 2)`; `(t, h, w)` stays; anything else is an error naming `name`."""
    triple = (value,) * 3 if isinstance(value, int) else tuple(int(v) for v in value)
    if len(triple) != 3 or min(triple) <= 0:
        raise ValueError(f"{name} must be a positive int or a (t, h, w) triple of them, got {value!r}")
    return triple


def tubelet_grid(video_size: Size3D, tubelet_size: Size3D) -> tuple[int, int, int]:
    """The token grid `(T / t, H / h, W / w)`, checking that the tubelets tile the video."""
    size, tube = as_triple(video_size, "video_size"), as_triple(tubelet_size)
    if any(s % t for s, t in zip(size, tube, strict=True)):
        raise ValueError(f"video size (T, H, W)={size} is not divisible by tubelet_size {tube}")
    return tuple(s // t for s, t in zip(size, tube, strict=True))


def tubeletify(videos: jax.Array, tubelet_size: Size3D) -> jax.Array:
    """Cut videos into flattened tubelets (VideoMAE's cube embedding input).

    Args:
      videos: `[B, T, H, W, C]`.
      tubelet_size: `(t, h, w)` frames, rows and columns per tubelet.

    Returns:
      `[B, N, t * h * w * C]` with `N = (T/t) (H/h) (W/w)` in time-major grid order
      (all tubelets of the first time slot, row by row, then the next slot); each vector
      is ordered (frame in tubelet, row, column, channel).
    """
    if videos.ndim != 5:
        raise ValueError(f"videos must be [B, T, H, W, C], got shape {videos.shape}")
    b, t, h, w, c = videos.shape
    pt, ph, pw = as_triple(tubelet_size)
    gt, gh, gw = tubelet_grid((t, h, w), (pt, ph, pw))
    x = videos.reshape(b, gt, pt, gh, ph, gw, pw, c)
    x = jnp.transpose(x, (0, 1, 3, 5, 2, 4, 6, 7))
    return x.reshape(b, gt * gh * gw, pt * ph * pw * c)


def untubeletify(tubelets: jax.Array, grid: tuple[int, int, int], tubelet_size: Size3D) -> jax.Array:
    """Inverse of `tubeletify`: `[B, N, t * h * w * C]` on `grid` `(T/t, H/h, W/w)` -> `[B, T, H, W, C]`."""
    b, n, dim = tubelets.shape
    pt, ph, pw = as_triple(tubelet_size)
    gt, gh, gw = as_triple(grid, "grid")
    if n != gt * gh * gw:
        raise ValueError(f"{n} tubelets do not fill a {gt}x{gh}x{gw} grid")
    if dim % (pt * ph * pw):
        raise ValueError(f"tubelet vector size {dim} is not a multiple of tubelet volume {pt * ph * pw}")
    c = dim // (pt * ph * pw)
    x = tubelets.reshape(b, gt, gh, gw, pt, ph, pw, c)
    x = jnp.transpose(x, (0, 1, 4, 2, 5, 3, 6, 7))
    return x.reshape(b, gt * pt, gh * ph, gw * pw, c)


def sincos_3d(grid: tuple[int, int, int], dim: int, temperature: float = 10000.0) -> np.ndarray:
    """Separable sin-cos position embedding of a `(T, H, W)` token grid.

    Layout `[sin_w | cos_w | sin_h | cos_h | sin_t | cos_t]`: the column and row parts
    are `2 * (dim // 6)` wide each (MAE's 2-D order, column first) and time takes the
    rest, so any even `dim` works. Rows are in the time-major order of `tubeletify`.

    Args:
      grid: `(T, H, W)`.
      dim: even embedding size.

    Returns:
      float32 `[T * H * W, dim]`.
    """
    if dim % 2 or dim < 6:
        raise ValueError(f"sincos_3d needs an even dim >= 6, got {dim}")
    frames, rows, cols = as_triple(grid, "grid")
    spatial = 2 * (dim // 6)
    t, h, w = np.meshgrid(np.arange(frames), np.arange(rows), np.arange(cols), indexing="ij")
    parts = [sincos_1d(w, spatial, temperature), sincos_1d(h, spatial, temperature)]
    parts.append(sincos_1d(t, dim - 2 * spatial, temperature))
    return np.concatenate(parts, axis=1).astype(np.float32)


def sincos_flat(num_tokens: int, dim: int, temperature: float = 10000.0) -> np.ndarray:
    """VideoMAE's fixed 1-D sinusoid table over the flattened token index (reference and HF).

    Column `2i` is `sin(n * w_i)` and column `2i + 1` is `cos(n * w_i)` with
    `w_i = temperature ** (-2i / dim)`: `sincos_1d`'s frequencies, sin and cos interleaved.

    Args:
      num_tokens: N, tokens in `tubeletify`'s time-major order.
      dim: even embedding size.

    Returns:
      float32 `[N, dim]`.
    """
    if dim % 2:
        raise ValueError(f"sincos_flat needs an even dim, got {dim}")
    table = sincos_1d(np.arange(num_tokens), dim, temperature)
    half = dim // 2
    return np.stack([table[:, :half], table[:, half:]], axis=-1).reshape(num_tokens, dim).astype(np.float32)


def normalize_tubelet_channels(tubelets: jax.Array, channels: int, eps: float = 1e-6) -> jax.Array:
    """VideoMAE's `norm_pix_loss` target: each channel of each tubelet normalized over its pixels.

    `(x - mean) / (std + eps)` with the unbiased std, per tubelet and channel (the reference's
    and HF's formula; MAE's `normalize_patches` uses `sqrt(var + eps)` over the whole vector).

    Args:
      tubelets: `[B, N, t * h * w * C]` in `tubeletify`'s order (channel last).
      channels: C.

    Returns:
      float32 `[B, N, t * h * w * C]`.
    """
    b, n, dim = tubelets.shape
    if dim % channels:
        raise ValueError(f"tubelet vector size {dim} is not a multiple of channels={channels}")
    x = tubelets.astype(jnp.float32).reshape(b, n, dim // channels, channels)
    mean = jnp.mean(x, axis=2, keepdims=True)
    std = jnp.sqrt(jnp.var(x, axis=2, keepdims=True, ddof=1))
    return ((x - mean) / (std + eps)).reshape(b, n, dim)
