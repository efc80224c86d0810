"""I-JEPA multi-block context and target masks (Assran et al. 2023, facebookresearch/ijepa)."""

from __future__ import annotations

from functools import partial

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.masking.mask import Mask, inverse_permutation


@flax.struct.dataclass
class MultiBlockMasks:
    """Context and target token sets of one I-JEPA batch.

    Index sets are padded to a static size; `*_valid` marks the real entries, which
    come first (padding holds index 0).

    Attributes:
      context_ids: int32 `[B, N]`, context tokens in increasing order.
      context_valid: bool `[B, N]`, the first `min(context_counts)` entries: every
        example's context is cut to the shortest in the batch, as the reference does.
      context_counts: int32 `[B]`, context size of each example before the cut.
      context_mask: bool `[B, N]`, True at the context tokens kept after the cut.
      target_ids: int32 `[B, M, T]`, the tokens of each target block (row-major in the
        block); T is a static bound on the block area.
      target_valid: bool `[B, M, T]`, the first `h * w` entries.
      target_mask: bool `[B, M, N]`, True inside each target block.
      target_shape: int32 `[2]`, `(h, w)` of the target blocks (shared by the batch).
      context_shape: int32 `[2]`, `(h, w)` of the context block (shared by the batch).
    """

    context_ids: jax.Array
    context_valid: jax.Array
    context_counts: jax.Array
    context_mask: jax.Array
    target_ids: jax.Array
    target_valid: jax.Array
    target_mask: jax.Array
    target_shape: jax.Array
    context_shape: jax.Array

    def encoder_mask(self) -> Mask:
        """The `Mask` the context encoder uses: True where a token is not in the context."""
        return Mask(mask=~self.context_mask)


@partial(
    jax.jit,
    static_argnames=(
        "batch_size",
        "grid",
        "num_targets",
        "target_scale",
        "target_aspect",
        "context_scale",
        "context_aspect",
        "min_keep",
        "allow_overlap",
        "tries_per_level",
    ),
)
def multiblock_masks(
    key: jax.Array,
    batch_size: int,
    grid: tuple[int, int] = (14, 14),
    *,
    num_targets: int = 4,
    target_scale: tuple[float, float] = (0.15, 0.2),
    target_aspect: tuple[float, float] = (0.75, 1.5),
    context_scale: tuple[float, float] = (0.85, 1.0),
    context_aspect: tuple[float, float] = (1.0, 1.0),
    min_keep: int = 10,
    allow_overlap: bool = False,
    tries_per_level: int = 20,
) -> MultiBlockMasks:
    """I-JEPA multi-block masking: `num_targets` target blocks and one context block.

    Follows the reference `MaskCollator`:

    - Block sizes are drawn once per batch. One uniform `u` sets both the scale and the
      aspect ratio: `s = lo + u (hi - lo)`, `ar = lo + u (hi - lo)`, `area = int(H W s)`,
      `h = round(sqrt(area ar))`, `w = round(sqrt(area / ar))`, clipped to `H - 1`,
      `W - 1`.
    - Positions are drawn per image: top-left uniform in `[0, H - h)` x `[0, W - w)`.
    - The context block minus all target blocks must keep more than `min_keep`
      tokens; after `tries_per_level` failed positions one more target block is
      dropped from the constraint (the reference's timeout). All candidates are drawn
      at once and the first valid one is taken, so the loop has a fixed size.
    - The context index sets are cut to the shortest context in the batch.

    Args:
      key: PRNG key.
      batch_size: B.
      grid: patch grid `(H, W)`; N = H * W.
      num_targets: M, target blocks per image.
      target_scale, target_aspect: ranges of the target blocks.
      context_scale, context_aspect: ranges of the context block.
      min_keep: a context must keep more than this many tokens.
      allow_overlap: if True the context is not cut by the targets.
      tries_per_level: positions tried before relaxing the constraint by one block.

    Returns:
      MultiBlockMasks (shapes in its docstring).
    """
    height, width = grid
    for name, (lo, hi) in [
        ("target_scale", target_scale),
        ("target_aspect", target_aspect),
        ("context_scale", context_scale),
        ("context_aspect", context_aspect),
    ]:
        if not 0 < lo <= hi:
            raise ValueError(f"{name} must satisfy 0 < lo <= hi, got {(lo, hi)}")
    if height < 2 or width < 2:
        raise ValueError(f"grid must be at least 2x2, got {grid}")
    num_tokens = height * width
    max_target = _max_block_area(grid, target_scale, target_aspect)

    key_size, key_pos = jax.random.split(key)
    k_target, k_context = jax.random.split(key_size)
    target_hw = _block_size(k_target, grid, target_scale, target_aspect)
    context_hw = _block_size(k_context, grid, context_scale, context_aspect)

    one = partial(
        _multiblock_one,
        grid=grid,
        num_targets=num_targets,
        max_target=max_target,
        min_keep=min_keep,
        allow_overlap=allow_overlap,
        tries=tries_per_level,
    )
    context, target_ids, target_mask = jax.vmap(one, in_axes=(0, None, None))(
        jax.random.split(key_pos, batch_size), target_hw, context_hw
    )
    counts = jnp.sum(context, axis=1).astype(jnp.int32)
    shortest = jnp.min(counts)
    positions = jnp.arange(num_tokens)
    # Context tokens first, in increasing order, then the others (a stable partition).
    position = jnp.where(context, jnp.cumsum(context, 1) - 1, counts[:, None] + jnp.cumsum(~context, 1) - 1)
    context_ids = inverse_permutation(position.astype(jnp.int32))
    context_valid = jnp.broadcast_to(positions < shortest, (batch_size, num_tokens))
    context_ids = jnp.where(context_valid, context_ids, 0)
    rank = jnp.cumsum(context, axis=1) - 1
    context_mask = context & (rank < shortest)
    area = target_hw[0] * target_hw[1]
    target_valid = jnp.broadcast_to(jnp.arange(max_target) < area, target_ids.shape)
    return MultiBlockMasks(
        context_ids=context_ids,
        context_valid=context_valid,
        context_counts=counts,
        context_mask=context_mask,
        target_ids=jnp.where(target_valid, target_ids, 0),
        target_valid=target_valid,
        target_mask=target_mask,
        target_shape=target_hw,
        context_shape=context_hw,
    )


def _block_hw(u, grid, scale, aspect, xp=jnp):
    """The reference's block size for a uniform draw `u` (`xp` is jnp or np)."""
    height, width = grid
    s = scale[0] + u * (scale[1] - scale[0])
    ar = aspect[0] + u * (aspect[1] - aspect[0])
    area = xp.floor(height * width * s)
    h = xp.clip(xp.round(xp.sqrt(area * ar)), 1, height - 1).astype(xp.int32)
    w = xp.clip(xp.round(xp.sqrt(area / ar)), 1, width - 1).astype(xp.int32)
    return xp.stack([h, w])


def _block_size(key, grid, scale, aspect):
    return _block_hw(jax.random.uniform(key), grid, scale, aspect)


def _max_block_area(grid, scale, aspect) -> int:
    """A static bound on h * w: the largest area over a dense grid of draws.

    h and w are step functions of the draw `u` with steps far wider than the grid
    spacing, evaluated in float32 and float64 to cover rounding either way.
    """
    u = np.linspace(0.0, 1.0, 20001)
    areas = [
        np.prod(np.asarray(_block_hw(u.astype(dt), grid, scale, aspect, xp=np)), axis=0)
        for dt in (np.float32, np.float64)
    ]
    return int(max(a.max() for a in areas))


def _rect(grid, top, left, hw):
    height, width = grid
    rows = jnp.arange(height)[:, None]
    cols = jnp.arange(width)[None, :]
    return (rows >= top) & (rows < top + hw[0]) & (cols >= left) & (cols < left + hw[1])


def _multiblock_one(key, target_hw, context_hw, *, grid, num_targets, max_target, min_keep, allow_overlap, tries):
    height, width = grid
    k_targets, k_context = jax.random.split(key)

    # Targets: one position each; a free block always has h * w tokens.
    u = jax.random.uniform(k_targets, (2, num_targets))
    t_top = jnp.floor(u[0] * (height - target_hw[0])).astype(jnp.int32)
    t_left = jnp.floor(u[1] * (width - target_hw[1])).astype(jnp.int32)
    target_mask = jax.vmap(lambda t, left: _rect(grid, t, left, target_hw))(t_top, t_left)
    j = jnp.arange(max_target)
    w = jnp.maximum(target_hw[1], 1)
    target_ids = (t_top[:, None] + j // w) * width + t_left[:, None] + j % w

    # Context: levels 0..M drop the last `level` targets from the constraint.
    levels = num_targets + 1
    if allow_overlap:
        blocked = jnp.zeros((levels, height, width), bool)
    else:
        # cumulative[k] = union of targets[:k]; level l uses targets[:M - l].
        cumulative = jnp.concatenate([jnp.zeros((1, height, width), bool), jnp.cumsum(target_mask, axis=0) > 0], axis=0)
        blocked = cumulative[::-1]
    integral = jnp.pad(jnp.cumsum(jnp.cumsum(blocked.astype(jnp.int32), 1), 2), ((0, 0), (1, 0), (1, 0)))
    u = jax.random.uniform(k_context, (2, levels, tries))
    c_top = jnp.floor(u[0] * (height - context_hw[0])).astype(jnp.int32)
    c_left = jnp.floor(u[1] * (width - context_hw[1])).astype(jnp.int32)
    lv = jnp.arange(levels)[:, None]
    bottom, right = c_top + context_hw[0], c_left + context_hw[1]
    covered = (
        integral[lv, bottom, right]
        - integral[lv, c_top, right]
        - integral[lv, bottom, c_left]
        + integral[lv, c_top, c_left]
    )
    kept = context_hw[0] * context_hw[1] - covered
    valid = (kept > min_keep).reshape(-1)
    first = jnp.where(jnp.any(valid), jnp.argmax(valid), levels * tries - 1)
    level, attempt = first // tries, first % tries
    context = _rect(grid, c_top[level, attempt], c_left[level, attempt], context_hw) & ~blocked[level]
    return context.reshape(-1), target_ids.astype(jnp.int32), target_mask.reshape(num_targets, -1)


def _lift_ids(ids: jax.Array, valid: jax.Array, frames: int, plane: int) -> tuple[jax.Array, jax.Array]:
    """Spatial ids `[..., K]` -> the same positions in every time slot `[..., frames * K]`, real ones first, sorted."""
    offsets = jnp.arange(frames, dtype=ids.dtype)[:, None] * plane  # [T, 1]
    lifted = (ids[..., None, :] + offsets).reshape(*ids.shape[:-1], frames * ids.shape[-1])
    real = jnp.broadcast_to(valid[..., None, :], (*valid.shape[:-1], frames, valid.shape[-1])).reshape(lifted.shape)
    order = jnp.argsort(jnp.where(real, lifted, frames * plane + lifted), axis=-1)
    lifted, real = jnp.take_along_axis(lifted, order, -1), jnp.take_along_axis(real, order, -1)
    return jnp.where(real, lifted, 0), real


def tube_blocks(masks: MultiBlockMasks, frames: int) -> MultiBlockMasks:
    """V-JEPA's 3-D multi-block masks (Bardes et al. 2024): spatial blocks extended over every time slot.

    `masks` come from `multiblock_masks` on the spatial grid `(H, W)` of a `(T, H, W)` tubelet
    grid; each context and target block is repeated in all `frames = T` slots, so a hidden
    region cannot be copied from the same place in another frame. Token `(t, i)` of the 3-D
    grid is `t * H W + i` (time-major, as `tubeletify`).

    Returns:
      MultiBlockMasks over `N = T H W` tokens: `context_ids` / `context_valid` `[B, T Nc]`,
      `target_ids` / `target_valid` `[B, M, T T_blk]` (real entries first, increasing),
      `context_mask` `[B, N]`, `target_mask` `[B, M, N]`, counts times T; the shapes stay
      the spatial block sizes.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    plane = masks.context_mask.shape[-1]
    context_ids, context_valid = _lift_ids(masks.context_ids, masks.context_valid, frames, plane)
    target_ids, target_valid = _lift_ids(masks.target_ids, masks.target_valid, frames, plane)
    return MultiBlockMasks(
        context_ids=context_ids,
        context_valid=context_valid,
        context_counts=masks.context_counts * frames,
        context_mask=jnp.tile(masks.context_mask, (1, frames)),
        target_ids=target_ids,
        target_valid=target_valid,
        target_mask=jnp.tile(masks.target_mask, (1, 1, frames)),
        target_shape=masks.target_shape,
        context_shape=masks.context_shape,
    )


def mask_as_blocks(mask: Mask) -> MultiBlockMasks:
    """A fixed-count `Mask` as I-JEPA masks: the visible tokens are the context, the hidden ones one target set.

    For JEPA over masks that are not blocks (A-JEPA's time-frequency masks and their curriculum,
    VideoMAE's tubes): the predictor fills every hidden token from the visible ones at once.

    Args:
      mask: a Mask with `mask` bool `[B, N]` and `ids_keep` `[B, K]`: every example hides N - K.

    Returns:
      MultiBlockMasks with `context_ids` `[B, K]` and `target_ids` `[B, 1, N - K]`, both in
      increasing order and all valid; `target_shape` and `context_shape` are `(0, 0)` (not blocks).
    """
    if mask.ids_keep is None:
        raise ValueError("mask_as_blocks needs a fixed-count Mask (with ids_keep); draw it with fixed_count=True")
    hidden = mask.mask.astype(bool)
    batch, num_tokens = hidden.shape
    keep = mask.ids_keep.shape[1]
    order = jnp.argsort(hidden, axis=1, stable=True).astype(jnp.int32)  # visible first, each part increasing
    context_ids, target_ids = order[:, :keep], order[:, keep:]
    return MultiBlockMasks(
        context_ids=context_ids,
        context_valid=jnp.ones((batch, keep), bool),
        context_counts=jnp.full((batch,), keep, jnp.int32),
        context_mask=~hidden,
        target_ids=target_ids[:, None],
        target_valid=jnp.ones((batch, 1, num_tokens - keep), bool),
        target_mask=hidden[:, None],
        target_shape=jnp.zeros((2,), jnp.int32),
        context_shape=jnp.zeros((2,), jnp.int32),
    )
