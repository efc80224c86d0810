"""Diagonal Gaussian mixtures for continuous tokens (GIVT): split, log-density, sampling, guided sampling.

GIVT (Tschannen et al. 2023) predicts each continuous token `x` in R^D with a K-component mixture of
diagonal Gaussians. The layout of the raw head output follows big_vision's `givt.Model.get_pdf` with
`per_channel_mixtures=False`: `[K mixture logits | K x (D means, D raw scales)]`.

All math runs in float32 whatever the input dtype.
"""

from __future__ import annotations

import math
from numbers import Real

import flax.struct
import jax
import jax.numpy as jnp

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@flax.struct.dataclass
class GMM:
    """A batch of diagonal Gaussian mixtures.

    Attributes:
      logits: `[..., K]` unnormalised mixture log-weights.
      means: `[..., K, D]` component means.
      scales: `[..., K, D]` component standard deviations (> 0).
    """

    logits: jax.Array
    means: jax.Array
    scales: jax.Array


def gmm_output_dim(num_components: int, dim: int) -> int:
    """Width of the raw head output for a K-component mixture over R^D: `K + 2 * K * D`."""
    _check_positive_int("num_components", num_components)
    _check_positive_int("dim", dim)
    return num_components + 2 * num_components * dim


def _check_positive_int(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}; expected a positive int")


def _squareplus(x: jax.Array) -> jax.Array:
    """`(x + sqrt(x^2 + 4)) / 2`, evaluated without cancellation for negative `x`.

    squareplus(x) * squareplus(-x) = 1, so the negative side is `1 / squareplus(|x|)`. Each branch gets
    an input that is clamped to its own side, so the branch that `where` drops has a finite gradient.
    """
    positive = jnp.where(x >= 0, x, 0.0)
    negative = jnp.where(x < 0, -x, 0.0)
    return jnp.where(x >= 0, 0.5 * (positive + jnp.hypot(positive, 2.0)), 2.0 / (negative + jnp.hypot(negative, 2.0)))


def split_gmm(raw: jax.Array, num_components: int, dim: int, min_scale: float = 1e-4) -> GMM:
    """Split a raw head output `[..., K + 2KD]` into a `GMM` (float32).

    The layout matches big_vision GIVT: the first K entries are mixture logits, the rest reshape to
    `[..., K, 2, D]` with means at index 0 and raw scales at index 1.

    The positive map also matches big_vision (not softplus): big_vision applies squareplus
    `(r + sqrt(r^2 + 4)) / 2` (its `fix_square_plus=True`, which the released GIVT configs set) and then
    thresholds with `max(., scale_tol)` (`scale_tol=1e-6` there). Here
    `scales = max(squareplus(raw), min_scale)`. Squareplus decays like `1 / |r|` for negative `r`,
    so the clamp only engages for `r` below about `-1 / min_scale`.

    Args:
      raw: `[..., K + 2 * K * D]` head output, any float dtype.
      num_components: K.
      dim: D.
      min_scale: smallest standard deviation, > 0.

    Returns:
      `GMM` with logits `[..., K]`, means `[..., K, D]`, scales `[..., K, D]`.
    """
    width = gmm_output_dim(num_components, dim)
    if raw.ndim < 1 or raw.shape[-1] != width:
        raise ValueError(f"raw.shape={raw.shape}; expected last axis {width} (K={num_components}, D={dim})")
    if not min_scale > 0:
        raise ValueError(f"min_scale={min_scale!r}; expected > 0")
    raw = raw.astype(jnp.float32)
    logits = raw[..., :num_components]
    rest = raw[..., num_components:].reshape(*raw.shape[:-1], num_components, 2, dim)
    scales = jnp.maximum(_squareplus(rest[..., 1, :]), jnp.float32(min_scale))
    return GMM(logits=logits, means=rest[..., 0, :], scales=scales)


def _component_log_probs(gmm: GMM, x: jax.Array) -> jax.Array:
    """`[..., D]` -> `[..., K]`: log(weight_k) + log N(x | mean_k, diag(scale_k^2))."""
    x = x.astype(jnp.float32)[..., None, :]
    means = gmm.means.astype(jnp.float32)
    scales = gmm.scales.astype(jnp.float32)
    z = (x - means) / scales
    log_normal = jnp.sum(-0.5 * jnp.square(z) - jnp.log(scales) - _HALF_LOG_2PI, axis=-1)
    return jax.nn.log_softmax(gmm.logits.astype(jnp.float32), axis=-1) + log_normal


def gmm_log_prob(gmm: GMM, x: jax.Array) -> jax.Array:
    """Log mixture density at `x`.

    Args:
      gmm: mixture with batch shape `[...]`.
      x: `[..., D]`; extra leading axes broadcast against the mixture's batch shape.

    Returns:
      float32 `[...]`: `logsumexp_k(log_softmax(logits)_k + sum_d log N(x_d | mean_kd, scale_kd))`.
    """
    return jax.nn.logsumexp(_component_log_probs(gmm, x), axis=-1)


def gmm_nll(gmm: GMM, x: jax.Array) -> jax.Array:
    """Negative log-likelihood `[...]` of `x` `[..., D]` (the GIVT training loss, before averaging)."""
    return -gmm_log_prob(gmm, x)


def _check_temperature(name: str, value: float | jax.Array, strict: bool = False) -> None:
    if isinstance(value, Real) and (value <= 0 if strict else value < 0):
        raise ValueError(f"{name}={value!r}; expected {'> 0' if strict else '>= 0'}")


def gmm_temper(
    gmm: GMM, temperature_probs: float | jax.Array = 1.0, temperature_scales: float | jax.Array = 1.0
) -> GMM:
    """The mixture that `gmm_sample` draws from at these temperatures.

    logits become `logits / temperature_probs` (temperature 0: log-weight 0 on the argmax component and
    -inf elsewhere) and scales become `temperature_scales * scales`. Temperatures may be traced.
    """
    _check_temperature("temperature_probs", temperature_probs)
    _check_temperature("temperature_scales", temperature_scales)
    logits = gmm.logits.astype(jnp.float32)
    t_probs = jnp.asarray(temperature_probs, jnp.float32)
    tempered = logits / jnp.where(t_probs > 0, t_probs, 1.0)
    k = logits.shape[-1]
    argmax = jax.nn.one_hot(jnp.argmax(logits, axis=-1), k, dtype=jnp.bool_)
    greedy = jnp.where(argmax, 0.0, -jnp.inf)
    scales = gmm.scales.astype(jnp.float32) * jnp.asarray(temperature_scales, jnp.float32)
    return GMM(logits=jnp.where(t_probs > 0, tempered, greedy), means=gmm.means.astype(jnp.float32), scales=scales)


def _draw(rng: jax.Array, gmm: GMM, sample_shape: tuple[int, ...]) -> jax.Array:
    """`[*sample_shape, ..., D]` samples from `gmm` as given (no tempering)."""
    rng_component, rng_noise = jax.random.split(rng)
    batch_shape = gmm.logits.shape[:-1]
    k, d = gmm.means.shape[-2:]
    component = jax.random.categorical(rng_component, gmm.logits, axis=-1, shape=(*sample_shape, *batch_shape))
    full = (*sample_shape, *batch_shape, k, d)
    index = component[..., None, None]
    mean = jnp.take_along_axis(jnp.broadcast_to(gmm.means, full), index, axis=-2)[..., 0, :]
    scale = jnp.take_along_axis(jnp.broadcast_to(gmm.scales, full), index, axis=-2)[..., 0, :]
    return mean + scale * jax.random.normal(rng_noise, mean.shape, jnp.float32)


def gmm_sample(
    rng: jax.Array,
    gmm: GMM,
    temperature_probs: float | jax.Array = 1.0,
    temperature_scales: float | jax.Array = 1.0,
    sample_shape: tuple[int, ...] = (),
) -> jax.Array:
    """Draw from the mixture: a component from `softmax(logits / temperature_probs)`, then
    `mean + temperature_scales * scale * eps` with `eps ~ N(0, I)`.

    Temperature 0 for the probabilities picks the argmax component; temperature 0 for the scales returns
    that component's mean. GIVT (big_vision `get_pdf`) multiplies the scales by its `temp`, the same as
    `temperature_scales` here, but *multiplies* the logits by its `temp_probs`, so its `temp_probs`
    equals `1 / temperature_probs` here.

    Args:
      rng: PRNG key.
      gmm: mixture with batch shape `[...]`, K components over R^D.
      temperature_probs: >= 0, may be traced.
      temperature_scales: >= 0, may be traced.
      sample_shape: leading shape of independent draws.

    Returns:
      float32 `[*sample_shape, ..., D]`.
    """
    return _draw(rng, gmm_temper(gmm, temperature_probs, temperature_scales), tuple(sample_shape))


def gmm_guided_sample(
    rng: jax.Array,
    cond: GMM,
    uncond: GMM,
    guidance: float | jax.Array,
    num_proposals: int = 64,
    temperature_probs: float | jax.Array = 1.0,
    temperature_scales: float | jax.Array = 1.0,
) -> jax.Array:
    """GIVT's distribution-based classifier-free guidance (DB-CFG) by sampling-importance-resampling.

    Target per position: `p(x) ∝ p_c(x)^w p_u(x)^(1-w)` with `w = guidance` (1: conditional, 0:
    unconditional), where `p_c`, `p_u` are the mixtures after `gmm_temper` (big_vision also tempers
    both before guiding). Draws `num_proposals` samples from `p_c`, weights each by
    `(w - 1) * (log p_c - log p_u)` (the log of target / proposal) and picks one per position from a
    categorical over those weights. SIR is exact as `num_proposals -> inf`; with few proposals it is
    pulled toward `p_c` when the target lies far from it (large `w`, well-separated `p_c` and `p_u`).

    How big_vision differs (`parallel_decode.CFGDensity`): its weight is `w_bv = w - 1`
    (target `p_c^(1+w_bv) p_u^(-w_bv)`); it samples one component index from the conditional mixture,
    pairs it with the *same* index of the unconditional one and guides only those two Gaussians, each
    dimension on its own; it samples by rejection (up to 1000 proposals from a Normal at the conditional
    mean with twice the larger scale, bound found on a grid), falling back to the conditional sample
    when nothing is accepted. Here the guided density is the product of the full mixtures, jointly over
    D, and there is no fallback.

    A concrete `guidance == 1` returns `gmm_sample(rng, cond, ...)` exactly; a traced 1 gives the same
    distribution.

    Args:
      rng: PRNG key.
      cond: conditional mixture, batch shape `[...]`.
      uncond: unconditional mixture, same shapes as `cond`.
      guidance: w, may be traced.
      num_proposals: proposals per position, >= 1.
      temperature_probs: >= 0 (0: argmax component), may be traced.
      temperature_scales: > 0 (the densities need positive scales), may be traced.

    Returns:
      float32 `[..., D]`.
    """
    if not isinstance(num_proposals, int) or num_proposals < 1:
        raise ValueError(f"num_proposals={num_proposals!r}; expected a positive int")
    if cond.means.shape != uncond.means.shape or cond.logits.shape != uncond.logits.shape:
        raise ValueError(f"uncond.means.shape={uncond.means.shape}; expected cond's {cond.means.shape}")
    _check_temperature("temperature_scales", temperature_scales, strict=True)
    if isinstance(guidance, Real) and guidance == 1:
        return gmm_sample(rng, cond, temperature_probs, temperature_scales)
    cond = gmm_temper(cond, temperature_probs, temperature_scales)
    uncond = gmm_temper(uncond, temperature_probs, temperature_scales)
    rng_proposals, rng_pick = jax.random.split(rng)
    proposals = _draw(rng_proposals, cond, (num_proposals,))
    log_ratio = gmm_log_prob(cond, proposals) - gmm_log_prob(uncond, proposals)
    log_weights = (jnp.asarray(guidance, jnp.float32) - 1.0) * log_ratio
    pick = jax.random.categorical(rng_pick, log_weights, axis=0)
    return jnp.take_along_axis(proposals, pick[None, ..., None], axis=0)[0]
