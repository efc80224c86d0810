"""Time-series ops: per-variate patching and position table (PatchTST), per-instance normalization (RevIN)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.ops.posemb import sincos_1d


def series_patch_count(length: int, patch_len: int, stride: int | None = None) -> int:
    """P, the number of patches `patch_series` cuts from a length-`length` series (see its `stride`)."""
    if patch_len < 1 or length < patch_len:
        raise ValueError(f"series length {length} must be at least patch_len={patch_len} >= 1")
    if stride is None:
        if length % patch_len:
            raise ValueError(f"series length {length} must be a positive multiple of patch_len={patch_len}")
        return length // patch_len
    if stride < 1:
        raise ValueError(f"patch stride={stride}: expected a positive number of time steps")
    return (length - patch_len) // stride + 1


def patch_series(series: jax.Array, patch_len: int, stride: int | None = None) -> jax.Array:
    """Cut each variate into patches (channel-independent PatchTST).

    Args:
      series: `[B, L, V]`.
      patch_len: p.
      stride: None: non-overlapping patches, L divisible by p. A number s: HF PatchTST's
        patchifier, `P = (L - p) // s + 1` patches of the last `p + s * (P - 1)` steps (the
        first `(L - p) % s` steps are dropped); patches overlap when `s < p`.

    Returns:
      `[B, V, P, p]`: patch `j` of variate `v` holds time steps `start + j*s .. start + j*s + p - 1`
      (`start = 0`, `s = p` when `stride` is None).
    """
    batch, length, variates = series.shape
    num_patches = series_patch_count(length, patch_len, stride)
    if stride is None:
        patches = series.reshape(batch, num_patches, patch_len, variates)
    else:
        start = (length - patch_len) % stride
        steps = start + stride * np.arange(num_patches)[:, None] + np.arange(patch_len)[None, :]
        patches = series[:, steps, :]
    return jnp.transpose(patches, (0, 3, 1, 2))


def patchtst_sincos(num_patches: int, width: int) -> np.ndarray:
    """HF PatchTST's fixed `sincos` position table `[P, D]`.

    Interleaved sin (even columns) and cos (odd columns) of `position / 10000 ** (2i / D)`, then
    the whole table shifted to mean 0 and scaled to standard deviation 0.1 (torch's unbiased std).
    """
    if width % 2:
        raise ValueError(f"model.width={width}: the sincos position table needs an even width")
    half = sincos_1d(np.arange(num_patches), width)  # [sin | cos]
    table = np.empty((num_patches, width), np.float64)
    table[:, 0::2], table[:, 1::2] = half[:, : width // 2], half[:, width // 2 :]
    table = table - table.mean()
    return (table / (table.std(ddof=1) * 10)).astype(np.float32)


def unpatch_series(patches: jax.Array) -> jax.Array:
    """Inverse of `patch_series`: `[B, V, P, p]` -> `[B, P * p, V]`."""
    batch, variates, num_patches, patch_len = patches.shape
    return jnp.transpose(patches, (0, 2, 3, 1)).reshape(batch, num_patches * patch_len, variates)


def instance_stats(
    series: jax.Array, observed: jax.Array | None = None, eps: float = 1e-5
) -> tuple[jax.Array, jax.Array]:
    """RevIN statistics (Kim et al. 2022, used by PatchTST): mean and std over time, per example and variate.

    Args:
      series: `[B, L, V]`.
      observed: optional bool `[B, L, V]`; only observed values enter the statistics
        (so hidden values of an imputation or forecast window never leak into them).
      eps: added to the (biased) variance.

    Returns:
      `(mean, std)`, each float32 `[B, 1, V]`.
    """
    x = series.astype(jnp.float32)
    w = jnp.ones_like(x) if observed is None else observed.astype(jnp.float32)
    count = jnp.maximum(jnp.sum(w, axis=1, keepdims=True), 1.0)
    mean = jnp.sum(x * w, axis=1, keepdims=True) / count
    var = jnp.sum(jnp.square(x - mean) * w, axis=1, keepdims=True) / count
    return mean, jnp.sqrt(var + eps)


def normalize_series(series: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
    """`(x - mean) / std` with `[B, 1, V]` statistics from `instance_stats`."""
    return (series.astype(jnp.float32) - mean) / std


def denormalize_series(series: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
    """Inverse of `normalize_series`."""
    return series * std + mean
