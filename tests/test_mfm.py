"""MFM (`simmim.domain=frequency`): the frequency loss against numpy's FFT, and the method built from a config."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.config import ConfigError
from mmjax.losses import frequency_loss
from mmjax.masking import apply_frequency_mask, frequency_mask, image_spectrum
from mmjax.methods import build_method, simmim


def numpy_frequency_loss(pred, images, removed):
    """The reference's loss written out: per channel orthonormal fft2, shifted, modulus, mean over removed."""
    total, count = 0.0, 0
    for b in range(pred.shape[0]):
        for c in range(pred.shape[-1]):
            p = np.fft.fftshift(np.fft.fft2(pred[b, :, :, c], norm="ortho"))
            t = np.fft.fftshift(np.fft.fft2(images[b, :, :, c], norm="ortho"))
            distance = np.sqrt((p.real - t.real) ** 2 + (p.imag - t.imag) ** 2 + 1e-12)
            total += distance[removed[b]].sum()
            count += removed[b].sum()
    return total / count


def test_frequency_loss_matches_numpy_and_ignores_kept_frequencies():
    rng = np.random.default_rng(0)
    pred, images = rng.normal(size=(2, 12, 10, 3)), rng.normal(size=(2, 12, 10, 3))
    removed = np.asarray(frequency_mask(jax.random.key(1), 2, (12, 10), radius=3.0).removed)
    got = float(frequency_loss(jnp.asarray(pred), jnp.asarray(images), jnp.asarray(removed)))
    np.testing.assert_allclose(got, numpy_frequency_loss(pred, images, removed), rtol=1e-5)
    # A prediction wrong only in the frequencies the input kept costs (almost) nothing.
    spectrum = np.asarray(image_spectrum(jnp.asarray(images)))
    noise = rng.normal(size=spectrum.shape) * ~removed[..., None]
    kept_only = np.real(np.fft.ifft2(np.fft.ifftshift(spectrum + noise, axes=(1, 2)), axes=(1, 2)))
    assert float(frequency_loss(jnp.asarray(kept_only), jnp.asarray(images), jnp.asarray(removed))) < 1e-4
    assert got > 0.5


def tiny_mfm_config():
    config = simmim.default_config()
    config.model.update(size=None, image_size=16, patch_size=4, channels=1, width=32, depth=1, heads=2, mlp_dim=64)
    config.simmim.update(domain="frequency", frequency_radius=3.0)
    return config


def test_mfm_trains_on_the_filtered_image_and_scores_the_removed_frequencies():
    method = build_method(tiny_mfm_config())
    images = jax.random.normal(jax.random.key(0), (4, 16, 16, 1))
    batch = {"image": images}
    params = jax.jit(method.init)(jax.random.key(0), batch)
    assert "mask_token" not in params["encoder"]  # nothing is hidden as tokens
    (loss, metrics), grads = jax.jit(jax.value_and_grad(method.loss, has_aux=True))(params, batch, jax.random.key(2))
    assert np.isfinite(float(loss)) and all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
    # The loss is frequency_loss of the predicted image, on the filter this key draws.
    pred, filtered = method.predict(params, batch, jax.random.key(2))
    want = frequency_loss(
        pred.reshape(4, 4, 4, 4, 4).transpose(0, 1, 3, 2, 4).reshape(4, 16, 16, 1), images, filtered.removed
    )
    np.testing.assert_allclose(float(loss), float(want), rtol=1e-5)
    np.testing.assert_allclose(float(metrics["removed_fraction"]), float(jnp.mean(filtered.removed)), rtol=1e-6)
    # The encoder saw the filtered images: its prediction is what the model gives for them.
    direct = method.model.apply({"params": params}, apply_frequency_mask(images, filtered), None)
    np.testing.assert_allclose(np.asarray(pred), np.asarray(direct), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="hides none"):
        method.reconstruct(params, batch, jax.random.key(0))


def test_mfm_refuses_targets_and_losses_it_does_not_compute():
    config = tiny_mfm_config()
    config.target.kind = "hog"
    config.target.hog.cell = 2
    with pytest.raises(ConfigError, match="expected target.kind='pixels'"):
        build_method(config)
    config = tiny_mfm_config()
    config.loss.kind = "mse"
    with pytest.raises(ConfigError, match="expected loss.kind='l1'"):
        build_method(config)
    config = tiny_mfm_config()
    config.simmim.domain = "pixels"
    with pytest.raises(ConfigError, match="simmim.domain"):
        build_method(config)
