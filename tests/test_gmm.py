"""Diagonal Gaussian mixtures (GIVT): density against scipy, tiny scales, sampling and guided sampling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from mmjax.models.gmm_head import GMMHead
from mmjax.ops.gmm import GMM, gmm_guided_sample, gmm_log_prob, gmm_nll, gmm_output_dim, gmm_sample, split_gmm


def _random_gmm(rng: np.random.Generator, batch: int, k: int, d: int) -> GMM:
    return GMM(
        logits=jnp.asarray(rng.normal(size=(batch, k)), jnp.float32),
        means=jnp.asarray(rng.normal(size=(batch, k, d)), jnp.float32),
        scales=jnp.asarray(rng.uniform(0.3, 2.0, size=(batch, k, d)), jnp.float32),
    )


def test_log_prob_matches_scipy():
    rng = np.random.default_rng(0)
    gmm = _random_gmm(rng, 5, 4, 3)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    got = np.asarray(gmm_log_prob(gmm, jnp.asarray(x)))
    logits, means, scales = (np.asarray(a, np.float64) for a in (gmm.logits, gmm.means, gmm.scales))
    weights = logits - logsumexp(logits, axis=-1, keepdims=True)
    want = []
    for b in range(5):
        comps = [
            weights[b, k] + stats.multivariate_normal(means[b, k], np.diag(scales[b, k] ** 2)).logpdf(x[b])
            for k in range(4)
        ]
        want.append(logsumexp(comps))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(gmm_nll(gmm, jnp.asarray(x))), -np.asarray(want), rtol=1e-5, atol=1e-5)


def test_split_layout_and_tiny_scales_stay_finite():
    k, d = 2, 3
    raw = jnp.arange(gmm_output_dim(k, d), dtype=jnp.float32)[None]
    gmm = split_gmm(raw, k, d)
    np.testing.assert_array_equal(gmm.logits[0], [0, 1])
    np.testing.assert_array_equal(gmm.means[0, 1], [8, 9, 10])  # component 1: [means | raw scales] after 2 + 6
    # Raw scales of -1e8 would give a zero std; the floor keeps density and gradient finite.
    raw = jnp.concatenate([jnp.zeros((1, k)), jnp.zeros((1, k, 1, d)).repeat(2, 2).reshape(1, -1)], -1)
    raw = raw.at[0, k + d :].set(-1e8)
    x = jnp.full((1, d), 1e-3)

    def nll(raw):
        return gmm_nll(split_gmm(raw, k, d, min_scale=1e-6), x).sum()

    value, grad = jax.value_and_grad(nll)(raw)
    assert np.isfinite(float(value)) and float(value) > 1e3  # x is 1e3 stds from the mean
    assert np.all(np.isfinite(np.asarray(grad)))
    with pytest.raises(ValueError, match="raw.shape"):
        split_gmm(raw[:, :-1], k, d)


def test_sampling_moments_and_temperature():
    gmm = GMM(
        logits=jnp.log(jnp.asarray([[0.25, 0.75]])),
        means=jnp.asarray([[[-2.0], [2.0]]]),
        scales=jnp.asarray([[[0.5], [1.0]]]),
    )
    samples = np.asarray(gmm_sample(jax.random.key(0), gmm, sample_shape=(40000,)))[:, 0, 0]
    assert abs(samples.mean() - 1.0) < 0.03  # 0.25 * -2 + 0.75 * 2
    want_var = 0.25 * (0.25 + 4) + 0.75 * (1 + 4) - 1.0
    assert abs(samples.var() - want_var) < 0.1
    greedy = np.asarray(gmm_sample(jax.random.key(1), gmm, 0.0, 0.0, sample_shape=(10,)))
    np.testing.assert_array_equal(greedy, 2.0)


def test_guided_sampling_targets_the_geometric_mixture():
    # p_c = N(1, 1), p_u = N(0, 1): p_c^w p_u^(1-w) = N(w, 1).
    cond = GMM(logits=jnp.zeros((4000, 1)), means=jnp.ones((4000, 1, 1)), scales=jnp.ones((4000, 1, 1)))
    uncond = GMM(logits=cond.logits, means=jnp.zeros_like(cond.means), scales=cond.scales)
    for w in (0.0, 2.0):
        samples = np.asarray(gmm_guided_sample(jax.random.key(2), cond, uncond, w, num_proposals=256))
        assert abs(samples.mean() - w) < 0.06, (w, samples.mean())
        assert abs(samples.std() - 1.0) < 0.06, (w, samples.std())
    plain = gmm_sample(jax.random.key(3), cond)
    np.testing.assert_array_equal(gmm_guided_sample(jax.random.key(3), cond, cond, 1.0), plain)
    traced = jax.jit(lambda w: gmm_guided_sample(jax.random.key(3), cond, cond, w))(1.0)
    assert abs(float(traced.mean()) - 1.0) < 0.06


def test_head_outputs_a_mixture():
    head = GMMHead(num_components=3, dim=4)
    features = jnp.ones((2, 5, 8))
    params = head.init(jax.random.key(0), features)
    gmm = head.apply(params, features)
    assert gmm.logits.shape == (2, 5, 3) and gmm.means.shape == (2, 5, 3, 4)
    assert bool(jnp.all(gmm.scales > 0))
