"""Classifier-free guidance (Ho & Salimans 2022; MaskGIT / Muse sampling) with a scale schedule."""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

GUIDANCE_SCHEDULES = ("constant", "linear", "cosine")


def guidance_scale(step: jax.Array, num_steps: int, scale: float, schedule: str = "constant") -> jax.Array:
    """The guidance scale at decoding step `t` of `T`.

    `constant`: `scale`; `linear`: `scale * (t + 1) / T` (weak early, full at the end, as
    Muse's increasing guidance); `cosine`: `scale * (1 - cos(pi * (t + 1) / T)) / 2`.

    Returns:
      float32 scalar.
    """
    ratio = (jnp.asarray(step, jnp.float32) + 1.0) / num_steps
    if schedule == "constant":
        weight = jnp.ones_like(ratio)
    elif schedule == "linear":
        weight = ratio
    elif schedule == "cosine":
        weight = 0.5 * (1.0 - jnp.cos(math.pi * ratio))
    else:
        raise ValueError(f"guidance schedule must be one of {GUIDANCE_SCHEDULES}, got {schedule!r}")
    return scale * weight


def guide(cond_logits: jax.Array, uncond_logits: jax.Array, scale: jax.Array) -> jax.Array:
    """`uncond + scale * (cond - uncond)`: scale 0 is unconditional, 1 conditional, > 1 guided.

    Args:
      cond_logits, uncond_logits: `[B, N, V]`.
      scale: scalar.
    """
    cond_logits = cond_logits.astype(jnp.float32)
    uncond_logits = uncond_logits.astype(jnp.float32)
    return uncond_logits + scale * (cond_logits - uncond_logits)


def guided_tokens_to_logits(
    logits_fn: Callable[[jax.Array, bool], jax.Array],
    num_steps: int,
    scale: float,
    schedule: str = "constant",
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """Wrap `logits_fn(codes [B, N], conditional: bool) -> [B, N, V]` into a guided `tokens_to_logits`.

    With `scale == 1` (constant) only the conditional pass runs.
    """
    if scale == 1.0 and schedule == "constant":
        return lambda codes, step: logits_fn(codes, True)

    def tokens_to_logits(codes: jax.Array, step: jax.Array) -> jax.Array:
        return guide(logits_fn(codes, True), logits_fn(codes, False), guidance_scale(step, num_steps, scale, schedule))

    return tokens_to_logits
