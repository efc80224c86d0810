"""Point clouds: farthest-point sampling and kNN grouping into patches, with random and region masks."""

from __future__ import annotations

from functools import partial

import flax.struct
import jax
import jax.numpy as jnp

from mmjax.masking.dense import select_lowest, with_indices
from mmjax.masking.mask import Mask, num_visible_tokens


@flax.struct.dataclass
class PointPatches:
    """Point-cloud patches around sampled centers (Point-BERT / Point-MAE grouping).

    Attributes:
      centers: float `[B, G, 3]`.
      center_ids: int32 `[B, G]`, indices of the centers in the cloud.
      neighbor_ids: int32 `[B, G, K]`, the K nearest points of each center, nearest first.
      patches: float `[B, G, K, 3]`, neighbor coordinates relative to their center.
    """

    centers: jax.Array
    center_ids: jax.Array
    neighbor_ids: jax.Array
    patches: jax.Array


@partial(jax.jit, static_argnames=("num_samples",))
def farthest_point_sampling(points: jax.Array, num_samples: int, key: jax.Array | None = None) -> jax.Array:
    """Farthest-point sampling: each new point is the farthest from those already picked.

    Starts at point 0 like the PointNet++ CUDA op used by Point-MAE, or at a random
    point per cloud when `key` is given. A `lax.fori_loop` of `num_samples` steps.

    Args:
      points: float `[B, P, 3]` (any coordinate width works).
      num_samples: S <= P.
      key: optional PRNG key for random starts.

    Returns:
      int32 `[B, S]`, distinct indices.
    """
    batch, num_points, _ = points.shape
    if not 0 < num_samples <= num_points:
        raise ValueError(f"num_samples must be in [1, {num_points}], got {num_samples}")
    if key is None:
        first = jnp.zeros((batch,), jnp.int32)
    else:
        first = jax.random.randint(key, (batch,), 0, num_points)
    take = jax.vmap(lambda p, i: p[i])

    def step(i, state):
        ids, dist = state
        last = take(points, ids[:, i - 1])
        dist = jnp.minimum(dist, jnp.sum((points - last[:, None]) ** 2, axis=-1))
        return ids.at[:, i].set(jnp.argmax(dist, axis=1).astype(jnp.int32)), dist

    ids = jnp.zeros((batch, num_samples), jnp.int32).at[:, 0].set(first)
    dist = jnp.full((batch, num_points), jnp.inf, points.dtype)
    ids, _ = jax.lax.fori_loop(1, num_samples, step, (ids, dist))
    return ids


def knn_groups(points: jax.Array, centers: jax.Array, k: int) -> jax.Array:
    """Indices of the `k` nearest points of each center, nearest first.

    Args:
      points: `[B, P, D]`.
      centers: `[B, G, D]`.
      k: group size.

    Returns:
      int32 `[B, G, k]`.
    """
    d2 = jnp.sum((centers[:, :, None] - points[:, None]) ** 2, axis=-1)
    return jax.lax.top_k(-d2, k)[1].astype(jnp.int32)


@partial(jax.jit, static_argnames=("num_groups", "group_size"))
def group_points(points: jax.Array, num_groups: int, group_size: int, key: jax.Array | None = None) -> PointPatches:
    """Point-MAE grouping (Pang et al. 2022): FPS centers, kNN neighborhoods, coordinates relative to center.

    Args:
      points: float `[B, P, 3]`.
      num_groups: G (64 for 1024 points in Point-MAE).
      group_size: K (32 in Point-MAE).
      key: optional PRNG key for random FPS starts.

    Returns:
      PointPatches.
    """
    center_ids = farthest_point_sampling(points, num_groups, key)
    centers = jnp.take_along_axis(points, center_ids[:, :, None], axis=1)
    neighbor_ids = knn_groups(points, centers, group_size)
    neighbors = jax.vmap(lambda p, i: p[i])(points, neighbor_ids)
    return PointPatches(
        centers=centers,
        center_ids=center_ids,
        neighbor_ids=neighbor_ids,
        patches=neighbors - centers[:, :, None],
    )


@partial(jax.jit, static_argnames=("mask_ratio", "num_regions"))
def region_mask(key: jax.Array, centers: jax.Array, mask_ratio: float, *, num_regions: int = 1) -> Mask:
    """Region masking of point patches: hide the patches nearest to random seed patches.

    Point-MAE's "block" masking (one seed) and the region-level masking of CPCM
    (Liu et al. 2023) in spirit: `num_regions` seed patches are drawn per cloud and the
    `N - int(N * (1 - mask_ratio))` patches closest to any seed are hidden, so hidden
    patches form contiguous regions. Random masking over patches is `random_mask`.

    Args:
      key: PRNG key.
      centers: float `[B, G, 3]` patch centers.
      mask_ratio: fraction of patches hidden.
      num_regions: seeds per cloud.

    Returns:
      Mask with `mask` `[B, G]`, `ids_keep`, `ids_restore`.
    """
    batch, groups, _ = centers.shape
    if not 0 < num_regions <= groups:
        raise ValueError(f"num_regions must be in [1, {groups}], got {num_regions}")
    keep = num_visible_tokens(groups, mask_ratio)
    # num_regions distinct seeds per cloud: the lowest of uniform noise.
    seeds = jax.lax.top_k(-jax.random.uniform(key, (batch, groups)), num_regions)[1]
    seed_xyz = jnp.take_along_axis(centers, seeds[:, :, None], axis=1)
    d2 = jnp.min(jnp.sum((centers[:, :, None] - seed_xyz[:, None]) ** 2, axis=-1), axis=2)
    return with_indices(select_lowest(d2, None, groups - keep), keep)
