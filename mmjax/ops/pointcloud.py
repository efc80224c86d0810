"""Point-cloud distances."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def chamfer_distance(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Symmetric L2-squared Chamfer distance, Point-MAE's `ChamferDistanceL2` per set.

    `mean_i min_j |a_i - b_j|^2 + mean_j min_i |a_i - b_j|^2` (squared distances, no
    square root: the L2 variant Point-MAE trains with, not its L1 variant).

    Args:
      pred: `[..., N, D]`.
      target: `[..., M, D]` (same leading axes).

    Returns:
      float32 `[...]`, one distance per set.
    """
    if pred.shape[:-2] != target.shape[:-2] or pred.shape[-1] != target.shape[-1]:
        raise ValueError(f"pred {pred.shape} and target {target.shape} must be [..., N, D] and [..., M, D]")
    a, b = pred.astype(jnp.float32), target.astype(jnp.float32)
    d2 = jnp.sum(jnp.square(a[..., :, None, :] - b[..., None, :, :]), axis=-1)  # [..., N, M]
    return jnp.mean(jnp.min(d2, axis=-1), axis=-1) + jnp.mean(jnp.min(d2, axis=-2), axis=-1)
