import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.losses import masked_mean, masked_mse, normalize_patches


def test_masked_mse_is_mean_over_hidden_patches_only():
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(2, 6, 4)), rng.normal(size=(2, 6, 4))
    mask = np.array([[1, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], bool)
    per_patch = ((pred - target) ** 2).mean(-1)
    expected = per_patch[mask].mean()
    got = masked_mse(jnp.asarray(pred), jnp.asarray(target), jnp.asarray(mask))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(float(got), expected, rtol=1e-6)


def test_norm_pix_uses_unbiased_variance_like_torch():
    torch = pytest.importorskip("torch")
    target = np.random.default_rng(1).normal(size=(3, 5, 12)).astype(np.float32)
    t = torch.from_numpy(target)
    ref = (t - t.mean(-1, keepdim=True)) / (t.var(-1, keepdim=True) + 1e-6) ** 0.5
    np.testing.assert_allclose(np.asarray(normalize_patches(jnp.asarray(target))), ref.numpy(), atol=1e-5)


def test_no_hidden_patch_gives_zero_loss_and_finite_gradient():
    pred = jnp.ones((2, 4, 3))
    target = jnp.zeros((2, 4, 3))
    mask = jnp.zeros((2, 4), bool)
    loss, grad = jax.value_and_grad(lambda p: masked_mse(p, target, mask, norm_pix=True))(pred)
    assert float(loss) == 0.0
    assert np.isfinite(np.asarray(grad)).all()
    assert float(masked_mean(jnp.ones(3), jnp.zeros(3))) == 0.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="do not match"):
        masked_mse(jnp.zeros((2, 4, 3)), jnp.zeros((2, 4, 2)), jnp.zeros((2, 4), bool))
    with pytest.raises(ValueError, match="at least 2 values"):
        normalize_patches(jnp.zeros((2, 1)))
