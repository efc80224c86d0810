"""BEiT block-wise masking (Bao et al. 2022, microsoft/unilm `beit/masking_generator.py`)."""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

from mmjax.masking.mask import Mask


@partial(
    jax.jit,
    static_argnames=(
        "batch_size",
        "grid",
        "num_masked",
        "min_block",
        "max_block",
        "min_aspect",
        "max_aspect",
        "max_tries",
    ),
)
def blockwise_mask(
    key: jax.Array,
    batch_size: int,
    grid: tuple[int, int] = (14, 14),
    num_masked: int = 75,
    *,
    min_block: int = 16,
    max_block: int | None = None,
    min_aspect: float = 0.3,
    max_aspect: float | None = None,
    max_tries: int = 10,
) -> Mask:
    """BEiT block-wise masking: hide random rectangles until a patch budget is met.

    The reference's sequential rejection loop, as a `lax.while_loop` per example:
    while fewer than `num_masked` patches are hidden, draw up to `max_tries`
    rectangles (`area ~ U(min_block, remaining)`, aspect ratio log-uniform in
    `[min_aspect, max_aspect]`, `h = round(sqrt(area * ar))`, `w = round(sqrt(area / ar))`,
    `h < H`, `w < W`, top-left uniform) and accept the first that adds between 1 and
    `remaining` new patches; stop when no try is accepted. The hidden count can fall
    short of the budget, so it varies per example (no `ids_keep`).

    Args:
      key: PRNG key.
      batch_size: B.
      grid: patch grid `(H, W)`; N = H * W.
      num_masked: the patch budget (75 of 196 in BEiT).
      min_block: smallest block area drawn (16 in BEiT's pretraining config).
      max_block: largest block area (None: `num_masked`).
      min_aspect, max_aspect: aspect-ratio range (None: `1 / min_aspect`).
      max_tries: rectangles drawn per block before giving up.

    Returns:
      Mask with `mask` bool `[B, N]` (row-major over the grid); the count varies.
    """
    height, width = grid
    if not 0 < num_masked <= height * width:
        raise ValueError(f"num_masked must be in [1, {height * width}], got {num_masked}")
    if min_aspect <= 0:
        raise ValueError(f"min_aspect must be > 0, got {min_aspect}")
    max_aspect = max_aspect or 1.0 / min_aspect
    one = partial(
        _blockwise_one,
        grid=(height, width),
        budget=num_masked,
        min_block=float(min_block),
        max_block=num_masked if max_block is None else max_block,
        log_aspect=(math.log(min_aspect), math.log(max_aspect)),
        max_tries=max_tries,
    )
    hidden = jax.vmap(one)(jax.random.split(key, batch_size))
    return Mask(mask=hidden.reshape(batch_size, height * width))


def _blockwise_one(key, *, grid, budget, min_block, max_block, log_aspect, max_tries):
    height, width = grid
    rows = jnp.arange(height)[None, :, None]
    cols = jnp.arange(width)[None, None, :]

    def keep_going(state):
        _, count, stopped, _ = state
        return (count < budget) & ~stopped

    def add_block(state):
        hidden, count, _, key = state
        key, sub = jax.random.split(key)
        remaining = jnp.minimum(budget - count, max_block)
        u = jax.random.uniform(sub, (4, max_tries))
        area = min_block + u[0] * (remaining - min_block)
        aspect = jnp.exp(log_aspect[0] + u[1] * (log_aspect[1] - log_aspect[0]))
        h = jnp.round(jnp.sqrt(area * aspect)).astype(jnp.int32)
        w = jnp.round(jnp.sqrt(area / aspect)).astype(jnp.int32)
        fits = (h < height) & (w < width)
        # randint(0, H - h) includes both ends.
        top = jnp.floor(u[2] * (height - h + 1)).astype(jnp.int32)
        left = jnp.floor(u[3] * (width - w + 1)).astype(jnp.int32)
        tb = lambda a: a[:, None, None]
        rect = (rows >= tb(top)) & (rows < tb(top + h)) & (cols >= tb(left)) & (cols < tb(left + w))
        new = jnp.sum(rect & ~hidden, axis=(1, 2))
        accepted = fits & (new > 0) & (new <= remaining)
        first = jnp.argmax(accepted)
        any_accepted = accepted[first]
        hidden = jnp.where(any_accepted, hidden | rect[first], hidden)
        count = count + jnp.where(any_accepted, new[first], 0)
        return hidden, count, ~any_accepted, key

    init = (jnp.zeros((height, width), bool), jnp.int32(0), jnp.bool_(False), key)
    hidden, *_ = jax.lax.while_loop(keep_going, add_block, init)
    return hidden
