"""Time-series ops: per-variate patching (PatchTST) and per-instance normalization (RevIN)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def patch_series(series: jax.Array, patch_len: int) -> jax.Array:
    """Cut each variate into non-overlapping patches (channel-independent PatchTST).

    Args:
      series: `[B, L, V]`, L divisible by `patch_len`.
      patch_len: p.

    Returns:
      `[B, V, L // p, p]`: patch `j` of variate `v` holds time steps `j*p .. j*p + p - 1`.
    """
    batch, length, variates = series.shape
    if patch_len < 1 or length % patch_len:
        raise ValueError(f"series length {length} must be a positive multiple of patch_len={patch_len}")
    patches = series.reshape(batch, length // patch_len, patch_len, variates)
    return jnp.transpose(patches, (0, 3, 1, 2))


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
