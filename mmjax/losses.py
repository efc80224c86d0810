"""Masked reductions and reconstruction objectives, computed in float32."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
    """`sum(values * weights) / sum(weights)`; 0 (not NaN) when no weight is set.

    Args:
      values: `[...]`.
      weights: same shape as `values` (bool or float), e.g. `Mask.mask`.

    Returns:
      float32 scalar.
    """
    values = values.astype(jnp.float32)
    weights = weights.astype(jnp.float32)
    total = jnp.sum(weights)
    return jnp.sum(values * weights) / jnp.where(total > 0, total, 1.0)


def normalize_patches(patches: jax.Array, eps: float = 1e-6) -> jax.Array:
    """MAE's `norm_pix_loss` target: per patch `(t - mean) / sqrt(var + eps)`.

    The variance is the unbiased one (`ddof=1`), as torch's default in the reference.

    Args:
      patches: `[..., P]` with `P > 1`.
    """
    if patches.shape[-1] < 2:
        raise ValueError(f"normalize_patches needs at least 2 values per patch, got {patches.shape[-1]}")
    patches = patches.astype(jnp.float32)
    mean = jnp.mean(patches, axis=-1, keepdims=True)
    var = jnp.var(patches, axis=-1, keepdims=True, ddof=1)
    return (patches - mean) / jnp.sqrt(var + eps)


def masked_mse(pred: jax.Array, target: jax.Array, mask: jax.Array, *, norm_pix: bool = False) -> jax.Array:
    """MAE reconstruction loss: per-patch MSE, averaged over hidden patches only.

    Args:
      pred: `[B, N, P]` predicted patches.
      target: `[B, N, P]` true patches (`mmjax.ops.patchify` of the images).
      mask: bool `[B, N]`, True = hidden (where the loss counts).
      norm_pix: normalise each target patch first (`normalize_patches`).

    Returns:
      float32 scalar.
    """
    if pred.shape != target.shape or pred.shape[:2] != mask.shape:
        raise ValueError(f"pred {pred.shape}, target {target.shape} and mask {mask.shape} do not match")
    target = normalize_patches(target) if norm_pix else target.astype(jnp.float32)
    per_patch = jnp.mean(jnp.square(pred.astype(jnp.float32) - target), axis=-1)
    return masked_mean(per_patch, mask)


def masked_l1(pred: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
    """SimMIM's loss: mean absolute error over the pixels of hidden patches only.

    Equals the reference's `sum(|x - x_rec| * mask) / (num_hidden_pixels * C)` (without its
    1e-5 in the denominator: an empty mask gives 0 here).

    Args:
      pred, target: `[B, N, P]` patch vectors.
      mask: bool `[B, N]`, True = hidden.
    """
    if pred.shape != target.shape or pred.shape[:2] != mask.shape:
        raise ValueError(f"pred {pred.shape}, target {target.shape} and mask {mask.shape} do not match")
    per_patch = jnp.mean(jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32)), axis=-1)
    return masked_mean(per_patch, mask)
