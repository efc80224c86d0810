"""Mask-ratio schedules: MaskGIT's schedules, training-time ratio sampling, step ramps and curricula."""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

from mmjax.masking.dense import select_lowest, with_indices
from mmjax.masking.mask import Mask
from mmjax.masking.signals import time_frequency_mask

MASKGIT_SCHEDULES = ("cosine", "linear", "square", "cubic", "sqrt", "log", "exp")


def maskgit_schedule(t: jax.Array, kind: str = "cosine", num_tokens: int | jax.Array | None = None) -> jax.Array:
    """MaskGIT's masked fraction at progress `t in [0, 1)` (Chang et al. 2022, `libml/mask_schedule.py`).

    cosine `cos(pi/2 t)`, linear `1 - t`, square `1 - t^2`, cubic `1 - t^3`,
    sqrt `1 - sqrt(t)`, log `-log2(t) / log2(N)`, exp `1 - 2^(-log2(N) (1 - t))`;
    clipped to `[1e-6, 1]` as in the reference. All decrease from 1 at t=0 towards 0.

    Args:
      t: float array of any shape.
      kind: one of `MASKGIT_SCHEDULES`.
      num_tokens: N, needed by "log" and "exp": an int, or an array that broadcasts with `t`
        (MaskGIT's decoding passes each example's starting count of masked tokens).

    Returns:
      The masked fraction, the shape of `t`.
    """
    t = jnp.asarray(t, jnp.float32)
    if kind in ("log", "exp") and (num_tokens is None or (isinstance(num_tokens, int) and num_tokens < 1)):
        raise ValueError(f"schedule {kind!r} needs num_tokens, got {num_tokens}")
    if kind == "cosine":
        ratio = jnp.cos(math.pi / 2 * t)
    elif kind == "linear":
        ratio = 1.0 - t
    elif kind == "square":
        ratio = 1.0 - t**2
    elif kind == "cubic":
        ratio = 1.0 - t**3
    elif kind == "sqrt":
        ratio = 1.0 - jnp.sqrt(t)
    elif kind == "log":
        ratio = -jnp.log2(t) / jnp.log2(jnp.asarray(num_tokens, jnp.float32))
    elif kind == "exp":
        ratio = 1.0 - jnp.exp2(-jnp.log2(jnp.asarray(num_tokens, jnp.float32)) * (1.0 - t))
    else:
        raise ValueError(f"kind must be one of {MASKGIT_SCHEDULES}, got {kind!r}")
    return jnp.clip(ratio, 1e-6, 1.0)


def sample_mask_ratio(
    key: jax.Array,
    batch_size: int,
    kind: str = "cosine",
    *,
    min_ratio: float = 0.0,
    num_tokens: int | None = None,
) -> jax.Array:
    """Training-time ratios (MaskGIT; Muse adds a floor): `max(min_ratio, schedule(t))`, `t ~ U[0, 1)`.

    Args:
      key: PRNG key.
      batch_size: B.
      kind: see `maskgit_schedule`.
      min_ratio: the smallest ratio returned.
      num_tokens: N for "log" and "exp".

    Returns:
      float32 `[B]`.
    """
    if not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"min_ratio must be in [0, 1], got {min_ratio}")
    t = jax.random.uniform(key, (batch_size,))
    return jnp.maximum(maskgit_schedule(t, kind, num_tokens), min_ratio)


def truncated_normal_ratio(
    key: jax.Array, batch_size: int, min_ratio: float, *, mean: float = 1.0, std: float = 0.25
) -> jax.Array:
    """MAR's training ratios: `N(mean, std)` truncated to `[min_ratio, 1]` (MAR: 1.0, 0.25, min 0.7).

    Returns:
      float32 `[B]`.
    """
    if not 0.0 <= min_ratio < 1.0 or std <= 0:
        raise ValueError(f"min_ratio must be in [0, 1) and std > 0, got {min_ratio}, {std}")
    z = jax.random.truncated_normal(key, (min_ratio - mean) / std, (1.0 - mean) / std, (batch_size,))
    return jnp.clip(mean + std * z, min_ratio, 1.0).astype(jnp.float32)


@partial(jax.jit, static_argnames=("num_tokens",))
def ratio_mask(key: jax.Array, num_tokens: int, ratios: jax.Array) -> Mask:
    """Hide `clip(ceil(ratio * N), 1, N)` random tokens per example, with per-example (traced) ratios.

    With `sample_mask_ratio` this is MaskGIT's training mask. The count varies, so
    only the boolean mask is returned.

    Args:
      key: PRNG key.
      num_tokens: N.
      ratios: float `[B]`.

    Returns:
      Mask with `mask` bool `[B, N]`.
    """
    ratios = jnp.asarray(ratios, jnp.float32)
    counts = jnp.clip(jnp.ceil(ratios * num_tokens), 1, num_tokens).astype(jnp.int32)
    noise = jax.random.uniform(key, (ratios.shape[0], num_tokens))
    return Mask(mask=select_lowest(noise, None, counts))


def ramp(step: jax.Array, total_steps: int, start: float, end: float, kind: str = "linear") -> jax.Array:
    """A value that moves from `start` (step 0) to `end` (step `total_steps` and after).

    Used for curricula that change a ratio with the step (e.g. HPM's easy-to-hard
    fraction, A-JEPA's move from random to structured masks).

    Args:
      step: int or int array (may be traced).
      total_steps: length of the ramp.
      start, end: the two values.
      kind: "linear" or "cosine" (half-cosine, flat at both ends).

    Returns:
      float32, the shape of `step`.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}")
    progress = jnp.clip(jnp.asarray(step, jnp.float32) / total_steps, 0.0, 1.0)
    if kind == "cosine":
        progress = 0.5 - 0.5 * jnp.cos(math.pi * progress)
    elif kind != "linear":
        raise ValueError(f"kind must be 'linear' or 'cosine', got {kind!r}")
    return start + progress * (end - start)


def curriculum_mask(
    key: jax.Array,
    step: jax.Array,
    total_steps: int,
    easy: Mask,
    hard: Mask,
    *,
    start: float = 0.0,
    end: float = 1.0,
    kind: str = "linear",
) -> Mask:
    """Curriculum masking (A-JEPA, Fei et al. 2023): move from an easy strategy to a hard one.

    Each example takes its mask from `hard` with probability `ramp(step, total_steps,
    start, end, kind)` and from `easy` otherwise (A-JEPA goes from random block masks to
    time-frequency-aware masks). Both masks must have `[B, N]` masks; when their index
    arrays have the same shapes (fixed-count masks with equal counts) those are
    chosen too, otherwise only `mask` is returned.

    Args:
      key: PRNG key.
      step: the training step (may be traced).
      total_steps: length of the curriculum.
      easy, hard: Masks with `[B, ...]` arrays.
      start, end, kind: the probability ramp.

    Returns:
      Mask, per example from one of the two.
    """
    p = ramp(step, total_steps, start, end, kind)
    batch = easy.mask.shape[0]
    pick_hard = jax.random.uniform(key, (batch,)) < p

    def choose(e, h):
        return jnp.where(pick_hard.reshape((batch,) + (1,) * (e.ndim - 1)), h, e)

    if jax.tree.structure(easy) != jax.tree.structure(hard) or any(
        a.shape != b.shape for a, b in zip(jax.tree.leaves(easy), jax.tree.leaves(hard), strict=True)
    ):
        # Different kinds of masks (e.g. fixed and variable counts): only the boolean mask combines.
        return Mask(mask=choose(easy.mask, hard.mask))
    return jax.tree.map(choose, easy, hard)


def time_frequency_curriculum_mask(
    key: jax.Array,
    batch_size: int,
    grid: tuple[int, int],
    time_ratio: float,
    freq_ratio: float,
    step: jax.Array,
    total_steps: int,
) -> Mask:
    """A-JEPA's curriculum over a `(time, frequency)` grid: random masks first, time-frequency ones by `total_steps`.

    The hard mask is `time_frequency_mask`; the easy one hides exactly as many tokens uniformly at
    random, so both have the same count and `ids_keep` stays fixed-size. Each example takes the
    hard one with probability `step / total_steps` (clipped to 1; `curriculum_mask`).

    Returns:
      Mask with `mask` `[B, N]`, `ids_keep` `[B, K]` and `ids_restore` `[B, N]`, K the time-frequency mask's.
    """
    k_easy, k_hard, k_pick = jax.random.split(key, 3)
    hard = time_frequency_mask(k_hard, batch_size, grid, time_ratio, freq_ratio)
    num_tokens, keep = hard.mask.shape[1], hard.ids_keep.shape[1]
    noise = jax.random.uniform(k_easy, (batch_size, num_tokens))
    easy = with_indices(select_lowest(noise, None, num_tokens - keep), keep)
    return curriculum_mask(k_pick, step, total_steps, easy, hard)
