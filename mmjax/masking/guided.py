"""Guided masking: hide patches chosen by attention, by a predicted loss, or by an external prior."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from mmjax.masking.dense import select_lowest, with_indices
from mmjax.masking.mask import Mask, num_visible_tokens
from mmjax.masking.schedules import ramp


def _num_hidden(num_tokens: int, mask_ratio: float) -> int:
    return num_tokens - num_visible_tokens(num_tokens, mask_ratio)


def _check_scores(scores: jax.Array, name: str) -> None:
    if scores.ndim != 2:
        raise ValueError(f"{name} must be [B, N], got shape {scores.shape}")


def mixed_guided_mask(key: jax.Array, scores: jax.Array, mask_ratio: float, num_guided: jax.Array | int) -> Mask:
    """Hide the `num_guided` highest-scoring tokens, then random others up to the MAE count.

    The shared core of AttMask and HPM. Every example hides exactly
    `N - int(N * (1 - mask_ratio))` tokens; `num_guided` (clipped to that) may be traced.

    Args:
      key: PRNG key.
      scores: float `[B, N]`, higher = more worth hiding.
      mask_ratio: fraction hidden, a Python float.
      num_guided: how many of the hidden tokens follow the scores.

    Returns:
      Mask with `mask` `[B, N]`, `ids_keep`, `ids_restore`.
    """
    _check_scores(scores, "scores")
    num_tokens = scores.shape[1]
    hidden = _num_hidden(num_tokens, mask_ratio)
    if isinstance(num_guided, int):  # static counts take the cheaper top_k path
        guided_count = min(max(num_guided, 0), hidden)
    else:
        guided_count = jnp.clip(jnp.asarray(num_guided, jnp.int32), 0, hidden)
    guided = select_lowest(-scores, None, guided_count)
    if isinstance(guided_count, int) and guided_count == hidden:
        return with_indices(guided, num_tokens - hidden)
    noise = jax.random.uniform(key, scores.shape)
    rest = select_lowest(noise, ~guided, hidden - guided_count)
    return with_indices(guided | rest, num_tokens - hidden)


@partial(jax.jit, static_argnames=("mask_ratio", "mode", "hint_ratio", "random_fraction"))
def attention_guided_mask(
    key: jax.Array,
    attention: jax.Array,
    mask_ratio: float = 0.5,
    *,
    mode: str = "high",
    hint_ratio: float = 0.1,
    random_fraction: float = 0.0,
) -> Mask:
    """AttMask (Kakogeorgiou et al. 2022): hide patches by a teacher's attention.

    Modes: "high" hides the most attended patches (AttMask-High); "low" the least
    attended (AttMask-Low); "hint" takes the `M + H` most attended, `H =
    round(hint_ratio * M)`, and reveals `H` random ones of them (AttMask-Hint).
    `random_fraction` of the hidden count is drawn at random instead (a mix with MAE
    masking). Every example hides exactly `M = N - int(N * (1 - mask_ratio))` tokens.

    Args:
      key: PRNG key.
      attention: float `[B, N]`, e.g. the [CLS] attention of the last layer averaged over heads.
      mask_ratio: fraction hidden.
      mode: "high", "low" or "hint".
      hint_ratio: share of the hidden count revealed as hints ("hint" mode).
      random_fraction: share of the hidden count drawn uniformly at random.

    Returns:
      Mask with `mask` `[B, N]`, `ids_keep`, `ids_restore`.
    """
    _check_scores(attention, "attention")
    num_tokens = attention.shape[1]
    hidden = _num_hidden(num_tokens, mask_ratio)
    guided = round(hidden * (1.0 - random_fraction))
    if mode == "high":
        return mixed_guided_mask(key, attention, mask_ratio, guided)
    if mode == "low":
        return mixed_guided_mask(key, -attention, mask_ratio, guided)
    if mode != "hint":
        raise ValueError(f"mode must be 'high', 'low' or 'hint', got {mode!r}")
    hints = min(round(hint_ratio * guided), num_tokens - hidden)
    k_hint, k_rest = jax.random.split(key)
    top = select_lowest(-attention, None, guided + hints)
    revealed = select_lowest(jax.random.uniform(k_hint, attention.shape), top, hints)
    guided_set = top & ~revealed
    rest = select_lowest(jax.random.uniform(k_rest, attention.shape), ~top, hidden - guided)
    return with_indices(guided_set | rest, num_tokens - hidden)


@partial(jax.jit, static_argnames=("mask_ratio", "total_steps", "alpha_start", "alpha_end"))
def hard_patch_mask(
    key: jax.Array,
    predicted_loss: jax.Array,
    mask_ratio: float,
    step: jax.Array,
    total_steps: int,
    *,
    alpha_start: float = 0.0,
    alpha_end: float = 0.5,
) -> Mask:
    """HPM hard-patch mining (Wang et al. 2023): hide the patches predicted to be hardest, easy to hard.

    A fraction `alpha_t = alpha_start + t / T (alpha_end - alpha_start)` of the hidden
    count goes to the patches with the highest predicted reconstruction loss; the rest
    are random, so training starts with random masks and grows harder.

    Args:
      key: PRNG key.
      predicted_loss: float `[B, N]`, the auxiliary loss predictor's output.
      mask_ratio: fraction hidden.
      step: training step (may be traced).
      total_steps: T.
      alpha_start, alpha_end: the easy-to-hard schedule.

    Returns:
      Mask with `mask` `[B, N]`, `ids_keep`, `ids_restore`.
    """
    _check_scores(predicted_loss, "predicted_loss")
    hidden = _num_hidden(predicted_loss.shape[1], mask_ratio)
    alpha = ramp(step, total_steps, alpha_start, alpha_end)
    return mixed_guided_mask(key, predicted_loss, mask_ratio, jnp.floor(alpha * hidden).astype(jnp.int32))


@partial(jax.jit, static_argnames=("mask_ratio", "temperature"))
def prior_guided_mask(key: jax.Array, prior: jax.Array, mask_ratio: float, *, temperature: float = 1.0) -> Mask:
    """Prior-guided masking: hide patches sampled with probability `softmax(prior / temperature)`.

    Sampling without replacement (Gumbel top-k) from an external score per patch,
    e.g. saliency or a segmentation prior (as in SemMAE, Li et al. 2022, or
    object-centric masking). A small temperature tends to the top-scoring patches.

    Args:
      key: PRNG key.
      prior: float `[B, N]`.
      mask_ratio: fraction hidden.
      temperature: > 0.

    Returns:
      Mask with `mask` `[B, N]`, `ids_keep`, `ids_restore`.
    """
    _check_scores(prior, "prior")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    num_tokens = prior.shape[1]
    hidden = _num_hidden(num_tokens, mask_ratio)
    scores = prior / temperature + jax.random.gumbel(key, prior.shape)
    return with_indices(select_lowest(-scores, None, hidden), num_tokens - hidden)
