"""Latent-target pieces shared by teacher distillation and I-JEPA: target normalization,
feature regression losses over selected tokens, and the collapse monitor."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mmjax.losses import cosine_distance, masked_mean, smooth_l1

FEATURE_LOSSES = ("smooth_l1", "cosine")
TARGET_NORMS = ("layernorm", "none")


def layer_norm_no_affine(x: jax.Array, eps: float = 1e-6) -> jax.Array:
    """`(x - mean) / sqrt(var + eps)` over the last axis, no scale or bias (float32).

    `[..., D] -> [..., D]`: the target normalization of I-JEPA and MaskDistill.
    """
    x = x.astype(jnp.float32)
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.var(x, axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps)


def normalize_targets(x: jax.Array, kind: str) -> jax.Array:
    """`layernorm` (no affine) or `none`, `[..., D] -> [..., D]` float32."""
    if kind == "layernorm":
        return layer_norm_no_affine(x)
    if kind == "none":
        return x.astype(jnp.float32)
    raise ValueError(f"target_norm must be one of {TARGET_NORMS}, got {kind!r}")


def feature_loss(
    pred: jax.Array, target: jax.Array, weights: jax.Array, kind: str = "smooth_l1", beta: float = 1.0
) -> jax.Array:
    """Feature regression averaged over the tokens where `weights` is set.

    Args:
      pred, target: `[..., T, D]` predicted and target features.
      weights: bool or float `[..., T]`: which tokens count.
      kind: `smooth_l1` (mean over the feature axis, then over tokens) or `cosine`
        (`1 - cos` per token, then the mean over tokens).
      beta: the smooth L1 transition point.

    Returns:
      float32 scalar; 0 when no token counts.
    """
    if pred.shape != target.shape or pred.shape[:-1] != weights.shape:
        raise ValueError(f"pred {pred.shape}, target {target.shape} and weights {weights.shape} do not match")
    if kind == "smooth_l1":
        per_token = jnp.mean(smooth_l1(pred, target, beta), axis=-1)
    elif kind == "cosine":
        per_token = cosine_distance(pred, target)
    else:
        raise ValueError(f"loss must be one of {FEATURE_LOSSES}, got {kind!r}")
    return masked_mean(per_token, weights)


def batch_feature_std(features: jax.Array) -> dict[str, jax.Array]:
    """Collapse monitor: per-dimension std across the batch (population std, `ddof=0`).

    Args:
      features: `[B, D]` one vector per example.

    Returns:
      `mean_std` and `min_std` float32 scalars over the `D` dimensions; both fall to 0
      when every example maps to the same vector.
    """
    std = jnp.std(features.astype(jnp.float32), axis=0)
    return {"mean_std": jnp.mean(std), "min_std": jnp.min(std)}


__all__ = [
    "FEATURE_LOSSES",
    "TARGET_NORMS",
    "batch_feature_std",
    "cosine_distance",
    "feature_loss",
    "layer_norm_no_affine",
    "normalize_targets",
    "smooth_l1",
]
