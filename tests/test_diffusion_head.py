"""MAR's diffusion loss and sampler: closed forms, a Gaussian's optimal denoiser, guidance, the head."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.models.diffusion_head import DiffusionHead
from mmjax.ops.diffusion import ddpm_sample, diffusion_loss, diffusion_loss_at, noise_schedule, respace


def test_schedules():
    cosine = noise_schedule("cosine", 1000)
    assert cosine.num_steps == 1000 and cosine.betas.max() <= 0.999
    assert cosine.alphas_cumprod[-1] < 1e-4 < cosine.alphas_cumprod[0]
    linear = noise_schedule("linear", 1000)
    np.testing.assert_allclose(linear.betas[[0, -1]], [1e-4, 0.02])
    spaced = respace(cosine, 100)
    assert spaced.num_steps == 100 and spaced.timesteps[0] == 0 and spaced.timesteps[-1] == 999
    # Respacing keeps the cumulative alphas of the kept steps.
    np.testing.assert_allclose(spaced.alphas_cumprod, cosine.alphas_cumprod[spaced.timesteps], rtol=1e-10)
    with pytest.raises(ValueError, match="noise_schedule='sigmoid'"):
        noise_schedule("sigmoid")
    with pytest.raises(ValueError, match="diffusion_steps=2000"):
        respace(cosine, 2000)


def reference_kept_steps(total: int, count: int) -> list[int]:
    """A transcription of improved-diffusion's `space_timesteps(total, str(count))` (one section), as
    LTH14/mar samples with it: the kept index is a rounded running sum of the fractional stride."""
    stride = 1 if count <= 1 else (total - 1) / (count - 1)
    steps, position = set(), 0.0
    for _ in range(count):
        steps.add(round(position))
        position += stride
    return sorted(steps)


def test_respacing_keeps_the_steps_the_reference_keeps_for_every_count():
    # Before: `round(i * stride)` kept a step one off the reference's for some counts (a running sum rounds
    # differently at a few halves), so a respaced sampler was not the reference's.
    cosine = noise_schedule("cosine", 1000)
    differ = [n for n in range(1, 1001) if respace(cosine, n).timesteps.tolist() != reference_kept_steps(1000, n)]
    assert differ == []
    assert reference_kept_steps(1000, 100)[:3] == [0, 10, 20] and reference_kept_steps(1000, 100)[-1] == 999


def test_loss_at_known_noise_matches_closed_form_for_a_linear_denoiser():
    rng = np.random.default_rng(0)
    m, d, c = 6, 3, 2
    a, b = rng.normal(size=(d, d)), rng.normal(size=(c, d))
    x0, cond, noise = rng.normal(size=(m, d)), rng.normal(size=(m, c)), rng.normal(size=(m, d))
    schedule = respace(noise_schedule("cosine", 1000), 50)
    t = rng.integers(0, 50, size=m)

    def denoise(x_t, time, cond):
        return x_t @ jnp.asarray(a, jnp.float32) + cond @ jnp.asarray(b, jnp.float32) + 1e-3 * time[:, None]

    got = diffusion_loss_at(
        denoise,
        schedule,
        *(jnp.asarray(v, jnp.float32) for v in (x0, cond)),
        jnp.asarray(t),
        jnp.asarray(noise, jnp.float32),
    )
    abar = schedule.alphas_cumprod[t][:, None]
    x_t = np.sqrt(abar) * x0 + np.sqrt(1 - abar) * noise
    predicted = x_t @ a + cond @ b + 1e-3 * schedule.timesteps[t][:, None]
    np.testing.assert_allclose(np.asarray(got), np.mean((noise - predicted) ** 2, -1), rtol=1e-5, atol=1e-5)

    flat = diffusion_loss(
        denoise, schedule, jnp.asarray(x0, jnp.float32), jnp.asarray(cond, jnp.float32), jax.random.key(0), repeats=3
    )
    assert flat.shape == (3 * m,)
    # A prediction of 100 * cond dwarfs the noise, so the loss of a draw names its token: draw r of
    # token m must sit at [r, m].
    loud = diffusion_loss(
        lambda x, t, cond: jnp.broadcast_to(100.0 * cond[:, :1], x.shape),
        schedule,
        jnp.asarray(x0, jnp.float32),
        jnp.asarray(cond, jnp.float32),
        jax.random.key(0),
        repeats=3,
    )
    np.testing.assert_allclose(loud.reshape(3, m), np.tile(1e4 * cond[:, 0] ** 2, (3, 1)), rtol=0.1, atol=20)


def _gaussian_denoiser(schedule, mean, std):
    """The optimal noise predictor for x0 ~ N(mean, std^2): E[eps | x_t]."""
    abar = jnp.asarray(np.cumprod(1 - schedule.betas), jnp.float32)
    index = {int(step): i for i, step in enumerate(schedule.timesteps)}
    lookup = jnp.asarray([index.get(s, 0) for s in range(int(schedule.timesteps.max()) + 1)])

    def denoise(x_t, time, cond):
        a = abar[lookup[time]][:, None]
        mu = mean + cond[:, :1]
        return jnp.sqrt(1 - a) * (x_t - jnp.sqrt(a) * mu) / (a * std**2 + 1 - a)

    return denoise


def test_sampling_the_optimal_denoiser_recovers_the_data_distribution():
    schedule = respace(noise_schedule("cosine", 1000), 100)
    denoise = _gaussian_denoiser(schedule, 1.5, 0.5)
    cond = jnp.zeros((8000, 1))
    samples = np.asarray(ddpm_sample(denoise, schedule, cond, jax.random.key(0), dim=2))
    assert abs(samples.mean() - 1.5) < 0.03, samples.mean()
    assert abs(samples.std() - 0.5) < 0.03, samples.std()
    cold = np.asarray(ddpm_sample(denoise, schedule, cond, jax.random.key(0), dim=2, temperature=0.5))
    assert cold.std() < 0.9 * samples.std()
    # A smooth error of 0.05 on the optimal prediction still samples the distribution: the sampler
    # recovers from the first step's amplified error when the denoiser is right away from the data
    # (a trained MLP is not: benchmarks/mar_parts.py).
    off = np.asarray(
        ddpm_sample(
            lambda x, t, c: denoise(x, t, c) + 0.05 * jnp.sin(37.0 * x), schedule, cond, jax.random.key(0), dim=2
        )
    )
    assert abs(off.mean() - 1.5) < 0.03 and abs(off.std() - 0.5) < 0.03, (off.mean(), off.std())


def test_guidance_extrapolates_the_noise_and_one_is_the_conditional_pass():
    schedule = respace(noise_schedule("cosine", 1000), 20)
    denoise = _gaussian_denoiser(schedule, 0.0, 1.0)
    cond, uncond = jnp.ones((4000, 1)), jnp.zeros((4000, 1))
    key = jax.random.key(1)
    plain = ddpm_sample(denoise, schedule, cond, key, dim=1)
    np.testing.assert_array_equal(ddpm_sample(denoise, schedule, cond, key, dim=1, guidance=1.0, uncond=uncond), plain)
    traced = jax.jit(lambda w: ddpm_sample(denoise, schedule, cond, key, dim=1, guidance=w, uncond=uncond))(1.0)
    np.testing.assert_allclose(traced, plain, atol=1e-4)
    guided = ddpm_sample(denoise, schedule, cond, key, dim=1, guidance=2.0, uncond=uncond)
    assert float(guided.mean()) > float(plain.mean()) + 0.5


def test_head_starts_at_zero_and_trains():
    head = DiffusionHead(dim=3, width=16, depth=2)
    x, t, cond = jnp.ones((4, 3)), jnp.arange(4), jnp.ones((4, 5))
    params = head.init(jax.random.key(0), x, t, cond)
    np.testing.assert_array_equal(head.apply(params, x, t, cond), 0.0)
    grads = jax.grad(lambda p: jnp.sum((head.apply(p, x, t, cond) - 1.0) ** 2))(params)
    assert float(jnp.abs(grads["params"]["out"]["kernel"].value).sum()) > 0
