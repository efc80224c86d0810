import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.masking import observed_cells, remasker_masks
from tests.mask_properties import check_key_properties


def test_remasker_algebra():
    values = np.array(jax.random.normal(jax.random.key(0), (64, 12)))
    values[np.asarray(jax.random.bernoulli(jax.random.key(1), 0.3, values.shape))] = np.nan
    observed = observed_cells(jnp.asarray(values))
    np.testing.assert_array_equal(np.asarray(observed), ~np.isnan(values))
    m = remasker_masks(jax.random.key(2), observed, 0.5)
    obs = np.asarray(observed)
    missing, remasked = np.asarray(m.missing), np.asarray(m.remasked)
    hidden, visible = np.asarray(m.hidden), np.asarray(m.visible)
    np.testing.assert_array_equal(missing, ~obs)
    assert not (remasked & ~obs).any()  # only observed cells are re-masked
    np.testing.assert_array_equal(hidden, missing | remasked)
    np.testing.assert_array_equal(visible, obs & ~remasked)
    np.testing.assert_array_equal(np.asarray(m.loss), remasked)
    n_obs = obs.sum(1)
    want = np.minimum(np.round(0.5 * n_obs), np.maximum(n_obs - 1, 0))
    np.testing.assert_array_equal(remasked.sum(1), want)
    assert (visible.sum(1) >= np.minimum(1, n_obs)).all()


def test_remask_is_uniform_over_observed_cells():
    observed = jnp.ones((4000, 4), bool)
    remasked = np.asarray(remasker_masks(jax.random.key(3), observed, 0.5).remasked)
    np.testing.assert_allclose(remasked.mean(0), 0.5, atol=4 * np.sqrt(0.25 / 4000))


def test_key_properties_and_errors():
    observed = jax.random.bernoulli(jax.random.key(4), 0.8, (4, 16))
    check_key_properties(lambda k: remasker_masks(k, observed, 0.5), lambda m: m.remasked)
    with pytest.raises(ValueError, match="remask_ratio must be in"):
        remasker_masks(jax.random.key(0), observed, -0.1)
