"""StoP / FlexPredict (`predictor.position_noise`): I-JEPA's mask tokens at stochastic positions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.config import ConfigError
from mmjax.methods import jepa
from tests.feature_helpers import digit_images, run_steps
from tests.test_jepa import tiny_config


def stop_config(sigma: float = 0.25):
    config = tiny_config()
    config.predictor.position_noise = sigma
    return config


@pytest.fixture(scope="module")
def setup():
    method = jepa.JEPA.from_config(stop_config())
    images = digit_images(8)
    params = jax.jit(method.init)(jax.random.key(0), {"image": images})
    masks = method.make_masks(jax.random.key(5), images.shape[0])
    return method, images, params, masks


def test_the_mask_token_lives_in_the_encoders_width_and_passes_the_context_projection(setup):
    method, images, params, masks = setup
    predictor = params["predictor"]
    assert "mask_token" not in predictor and predictor["stop_mask_token"].shape == (1, 1, 1, 16)  # model.width
    # Without noise the queries are B(m) + psi: the context projection's kernel moves them.
    pred, _ = method.predict(params, images, masks)
    bumped = {**params, "predictor": {**predictor, "stop_mask_token": predictor["stop_mask_token"] + 1.0}}
    moved, _ = method.predict(bumped, images, masks)
    assert np.abs(np.asarray(moved) - np.asarray(pred)).max() > 1e-3
    assert predictor["embed"]["kernel"].shape == (16, 8)


def test_the_noise_passes_the_context_projection(setup):
    method, images, params, masks = setup
    key = jax.random.key(9)
    pred, _ = method.predict(params, images, masks, key)
    clean, _ = method.predict(params, images, masks)
    assert np.abs(np.asarray(pred) - np.asarray(clean)).max() > 1e-4
    # Tied to B: with the context projection's kernel at zero the noise (and the token) cannot move anything.
    predictor = params["predictor"]
    embed = {**predictor["embed"], "kernel": jnp.zeros_like(predictor["embed"]["kernel"])}
    flat = {**params, "predictor": {**predictor, "embed": embed}}
    noisy, _ = method.predict(flat, images, masks, key)
    quiet, _ = method.predict(flat, images, masks)
    np.testing.assert_allclose(np.asarray(noisy), np.asarray(quiet), atol=1e-6)
    # And the noise grows with sigma: twice the std moves the predictions further (same draw).
    wider = jepa.JEPA.from_config(stop_config(0.5))
    far, _ = wider.predict(params, images, masks, key)
    assert np.abs(np.asarray(far) - np.asarray(clean)).mean() > np.abs(np.asarray(pred) - np.asarray(clean)).mean()


def test_stop_trains_and_the_loss_uses_fresh_noise(setup):
    method, images, params, _ = setup
    a, _ = method.loss(params, {"image": images}, jax.random.key(1))
    b, _ = method.loss(params, {"image": images}, jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # deterministic in the rng
    _, trained, losses = run_steps(method, stop_config().train, params, images, 25)
    assert np.isfinite(losses).all() and np.mean(losses[-5:]) < np.mean(losses[:5])
    before, after = params["predictor"]["stop_mask_token"], trained["predictor"]["stop_mask_token"]
    assert not np.allclose(np.asarray(after), np.asarray(before))


def test_without_noise_the_predictor_is_i_jepas_and_a_negative_sigma_is_named():
    method = jepa.JEPA.from_config(tiny_config())
    params = jax.jit(method.init)(jax.random.key(0), {"image": digit_images(2)})
    assert "mask_token" in params["predictor"] and "stop_mask_token" not in params["predictor"]
    with pytest.raises((ConfigError, ValueError), match="predictor.position_noise"):
        jepa.JEPA.from_config(stop_config(-0.1))
