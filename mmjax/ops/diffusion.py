"""Gaussian diffusion for one continuous token at a time (MAR's diffusion loss and sampler).

MAR (Li et al. 2024) trains a small denoiser per token with the DDPM epsilon objective and samples
it with ancestral DDPM steps, reusing OpenAI's `gaussian_diffusion` (improved-diffusion / DiT code):
T = 1000 training steps on the cosine schedule, 100 respaced sampling steps, no clipping of x0.

Deviation, on purpose: MAR's denoiser also predicts the variance (`learn_sigma=True`, trained by the
variational bound term); here the variance is the fixed posterior one (`fixed_small`) and the loss is
the epsilon MSE only. That halves the head's output and drops the VLB term; the sampler is otherwise
the same ancestral step.

Schedules are numpy float64 tables computed once (as the reference does) and enter jitted code as
float32 constants.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from numbers import Real

import jax
import jax.numpy as jnp
import numpy as np

NOISE_SCHEDULES = ("cosine", "linear")

Denoiser = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
"""`fn(x_t [M, D], t int32 [M], cond [M, C]) -> predicted noise [M, D]`."""


@dataclasses.dataclass(frozen=True)
class NoiseSchedule:
    """A discrete DDPM schedule of S steps.

    Attributes:
      betas: float64 `[S]` per-step noise variances.
      timesteps: int `[S]` the training step each entry stands for (the denoiser's time input):
        `arange(T)` for a training schedule, the kept steps after `respace`.
    """

    betas: np.ndarray
    timesteps: np.ndarray

    @property
    def num_steps(self) -> int:
        return int(self.betas.shape[0])

    @property
    def alphas_cumprod(self) -> np.ndarray:
        return np.cumprod(1.0 - self.betas)


def noise_schedule(kind: str, num_steps: int = 1000) -> NoiseSchedule:
    """The training schedule of `num_steps` steps.

    `cosine`: Nichol & Dhariwal's `alpha_bar(t) = cos((t + 0.008) / 1.008 * pi / 2)^2`, betas capped at
    0.999 (MAR's choice). `linear`: DDPM's betas from `1e-4` to `0.02`, scaled by `1000 / num_steps`.
    """
    if kind not in NOISE_SCHEDULES:
        raise ValueError(f"noise_schedule={kind!r}; expected one of {NOISE_SCHEDULES}")
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps={num_steps!r}; expected a positive int")
    if kind == "linear":
        scale = 1000.0 / num_steps
        betas = np.linspace(scale * 1e-4, scale * 0.02, num_steps, dtype=np.float64)
    else:

        def alpha_bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        betas = np.array(
            [min(1 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), 0.999) for i in range(num_steps)],
            dtype=np.float64,
        )
    return NoiseSchedule(betas=betas, timesteps=np.arange(num_steps))


def respace(schedule: NoiseSchedule, num_steps: int) -> NoiseSchedule:
    """Keep `num_steps` evenly strided steps (OpenAI's `space_timesteps(T, str(num_steps))`) and
    recompute the betas so the kept steps have the original cumulative alphas."""
    total = schedule.num_steps
    if not isinstance(num_steps, int) or not 1 <= num_steps <= total:
        raise ValueError(f"diffusion_steps={num_steps!r}; expected an int in [1, {total}]")
    stride = (total - 1) / (num_steps - 1) if num_steps > 1 else 1
    kept, position = set(), 0.0
    for _ in range(num_steps):  # a running sum, as the reference: `i * stride` rounds differently at some .5s
        kept.add(round(position))
        position += stride
    kept = sorted(kept)
    cumprod = schedule.alphas_cumprod
    betas, last = [], 1.0
    for i in kept:
        betas.append(1.0 - cumprod[i] / last)
        last = cumprod[i]
    return NoiseSchedule(betas=np.array(betas), timesteps=schedule.timesteps[np.array(kept)])


def _table(values: np.ndarray, t: jax.Array) -> jax.Array:
    """`values[t]` as float32 `[M, 1]`."""
    return jnp.asarray(values, jnp.float32)[t][:, None]


def q_sample(schedule: NoiseSchedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
    """`x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise` for x0, noise `[M, D]`, t int `[M]` (schedule index)."""
    cumprod = schedule.alphas_cumprod
    return _table(np.sqrt(cumprod), t) * x0 + _table(np.sqrt(1.0 - cumprod), t) * noise


def diffusion_loss_at(
    denoise_fn: Denoiser, schedule: NoiseSchedule, x0: jax.Array, cond: jax.Array, t: jax.Array, noise: jax.Array
) -> jax.Array:
    """Epsilon MSE `[M]` (mean over D) at given steps t int `[M]` and noise `[M, D]`."""
    x0 = x0.astype(jnp.float32)
    x_t = q_sample(schedule, x0, t, noise)
    timesteps = jnp.asarray(schedule.timesteps, jnp.int32)[t]
    predicted = denoise_fn(x_t, timesteps, cond).astype(jnp.float32)
    return jnp.mean(jnp.square(noise - predicted), axis=-1)


def diffusion_loss(
    denoise_fn: Denoiser, schedule: NoiseSchedule, x0: jax.Array, cond: jax.Array, rng: jax.Array, repeats: int = 1
) -> jax.Array:
    """MAR's per-token diffusion loss: `repeats` draws of (t, noise) per token.

    Args:
      x0: `[M, D]` clean tokens; cond: `[M, C]` their conditioning features.
      repeats: MAR's `diffusion_batch_mul` (4).

    Returns:
      float32 `[repeats * M]`, tiled as MAR's `repeat(repeats, 1)`: `.reshape(repeats, M)` gives
      draw r of token m at `[r, m]`.
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats={repeats!r}; expected a positive int")
    t_rng, noise_rng = jax.random.split(rng)
    x0 = jnp.tile(x0.astype(jnp.float32), (repeats, 1))
    cond = jnp.tile(cond, (repeats, 1))
    t = jax.random.randint(t_rng, (x0.shape[0],), 0, schedule.num_steps)
    noise = jax.random.normal(noise_rng, x0.shape, jnp.float32)
    return diffusion_loss_at(denoise_fn, schedule, x0, cond, t, noise)


def ddpm_sample(
    denoise_fn: Denoiser,
    schedule: NoiseSchedule,
    cond: jax.Array,
    rng: jax.Array,
    *,
    dim: int,
    temperature: float | jax.Array = 1.0,
    guidance: float | jax.Array = 1.0,
    uncond: jax.Array | None = None,
) -> jax.Array:
    """Ancestral DDPM sampling of one token per row of `cond` `[M, C]` -> float32 `[M, D]`.

    Starts at `x ~ N(0, I)`; each step computes x0 from the predicted noise (no clipping), takes the
    posterior mean and adds `temperature * sigma_t * eps` (no noise at the last step), as MAR's
    `p_sample` does. With `uncond` `[M, C]` the noise prediction is MAR's classifier-free guidance
    `eps_u + guidance * (eps_c - eps_u)`; `guidance` may be traced.
    """
    if isinstance(temperature, Real) and temperature < 0:
        raise ValueError(f"temperature={temperature!r}; expected >= 0")
    betas = schedule.betas
    cumprod = np.cumprod(1.0 - betas)
    cumprod_prev = np.append(1.0, cumprod[:-1])
    variance = betas * (1.0 - cumprod_prev) / (1.0 - cumprod)
    log_variance = np.log(np.append(variance[1], variance[1:]) if len(betas) > 1 else np.maximum(variance, 1e-20))
    consts = {
        "recip": np.sqrt(1.0 / cumprod),
        "recipm1": np.sqrt(1.0 / cumprod - 1.0),
        "coef_x0": betas * np.sqrt(cumprod_prev) / (1.0 - cumprod),
        "coef_xt": (1.0 - cumprod_prev) * np.sqrt(1.0 - betas) / (1.0 - cumprod),
        "sigma": np.exp(0.5 * log_variance),
    }
    consts = {k: jnp.asarray(v, jnp.float32) for k, v in consts.items()}
    timesteps = jnp.asarray(schedule.timesteps, jnp.int32)
    rows = cond.shape[0]
    guided = uncond is not None and not (isinstance(guidance, Real) and guidance == 1)

    def predict(x: jax.Array, time: jax.Array) -> jax.Array:
        if not guided:
            return denoise_fn(x, time, cond).astype(jnp.float32)
        both = denoise_fn(jnp.concatenate([x, x]), jnp.concatenate([time, time]), jnp.concatenate([cond, uncond]))
        eps_c, eps_u = jnp.split(both.astype(jnp.float32), 2)
        return eps_u + jnp.asarray(guidance, jnp.float32) * (eps_c - eps_u)

    def step(x: jax.Array, inputs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        i, key = inputs
        eps = predict(x, jnp.full((rows,), timesteps[i]))
        x0 = consts["recip"][i] * x - consts["recipm1"][i] * eps
        mean = consts["coef_x0"][i] * x0 + consts["coef_xt"][i] * x
        noise = jax.random.normal(key, x.shape, jnp.float32)
        scale = jnp.where(i > 0, consts["sigma"][i], 0.0) * jnp.asarray(temperature, jnp.float32)
        return mean + scale * noise, None

    init_rng, loop_rng = jax.random.split(rng)
    x = jax.random.normal(init_rng, (rows, dim), jnp.float32)
    steps = jnp.arange(schedule.num_steps - 1, -1, -1)
    x, _ = jax.lax.scan(step, x, (steps, jax.random.split(loop_rng, schedule.num_steps)))
    return x
