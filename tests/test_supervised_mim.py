"""Supervised MIM (SupMAE): MAE plus a label cross-entropy from the visible patches only."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmjax.config import ConfigError
from mmjax.losses import masked_loss
from mmjax.methods import build_method
from mmjax.methods.label_loss import label_cross_entropy
from mmjax.targets import make_target
from tests.test_parts import tiny_mae_config


def supervised_config(weight: float = 0.5, classes: int = 3):
    config = tiny_mae_config()
    config.supervised.weight = weight
    config.supervised.num_classes = classes
    return config


def batch_of(n: int = 4, seed: int = 0) -> dict:
    images = jax.random.normal(jax.random.key(seed), (n, 16, 16, 1))
    return {"image": images, "label": jnp.arange(n) % 3}


def test_smoothed_cross_entropy_matches_a_numpy_transcription():
    logits = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    labels = np.array([0, 3, 1, 2, 3])
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    target = np.full((5, 4), 0.1 / 4)
    target[np.arange(5), labels] += 0.9
    expected = -(target * logp).sum(-1).mean()
    got = label_cross_entropy(jnp.asarray(logits), jnp.asarray(labels), 0.1)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_the_loss_is_the_reconstruction_plus_the_weighted_label_loss():
    method = build_method(supervised_config(weight=0.5))
    batch = batch_of()
    params = method.init(jax.random.key(0), batch)
    assert params["supervised"]["head"]["kernel"].shape == (32, 3) and "norm" in params["supervised"]
    loss, metrics = method.loss(params, batch, jax.random.key(1))
    mask = method.make_mask(jax.random.key(1), 4)
    pred, out = method.model.apply({"params": params}, batch["image"], mask)
    logits = method.term("supervised").logits(params, out)
    target = make_target(method.target_part, batch["image"], method.model_config.patch_size)
    recon = masked_loss(method.loss_part, pred, target, mask.mask)
    ce = label_cross_entropy(logits, batch["label"])
    np.testing.assert_allclose(float(metrics["reconstruction_loss"]), float(recon), rtol=1e-5)
    np.testing.assert_allclose(float(metrics["label_loss"]), float(ce), rtol=1e-5)
    np.testing.assert_allclose(float(loss), float(recon + 0.5 * ce), rtol=1e-5)


def test_the_labels_are_predicted_from_the_visible_patches_only():
    method = build_method(supervised_config())
    batch = batch_of()
    params = method.init(jax.random.key(0), batch)
    mask = method.make_mask(jax.random.key(2), 4)
    term = method.term("supervised")

    def logits_of(images):
        return term.logits(params, method.model.apply({"params": params}, images, mask)[1])

    logits = logits_of(batch["image"])
    # Overwrite every hidden patch's pixels: the logits must not move; a visible patch's must move them.
    p = method.model_config.patch_size[0]
    hidden = np.asarray(mask.mask).reshape(4, 4, 4)
    pixel_hidden = np.repeat(np.repeat(hidden, p, axis=1), p, axis=2)[..., None]
    scrambled = jnp.where(pixel_hidden, 100.0, batch["image"])
    same = logits_of(scrambled)
    np.testing.assert_allclose(np.asarray(same), np.asarray(logits), rtol=1e-5, atol=1e-6)
    moved = logits_of(jnp.where(pixel_hidden, batch["image"], 100.0))
    assert np.abs(np.asarray(moved) - np.asarray(logits)).max() > 1e-3


def test_training_lowers_the_label_loss():
    method = build_method(supervised_config(weight=1.0))
    batch = batch_of(12, seed=3)
    params = method.init(jax.random.key(0), batch)
    opt = optax.adam(1e-2)
    state = opt.init(params)

    @jax.jit
    def step(params, state, rng):
        (_, metrics), grads = jax.value_and_grad(method.loss, has_aux=True)(params, batch, rng)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, metrics["label_loss"]

    losses = []
    for _ in range(40):  # one mask throughout: the labels of these noise images can only be memorized
        params, state, label_loss = step(params, state, jax.random.key(0))
        losses.append(float(label_loss))
    assert losses[-1] < 0.3 * losses[0]


def test_a_label_loss_without_classes_or_labels_is_refused():
    with pytest.raises(ConfigError, match=r"supervised.num_classes=0"):
        build_method(supervised_config(weight=1.0, classes=0))
    method = build_method(supervised_config())
    params = method.init(jax.random.key(0), batch_of())
    with pytest.raises(KeyError, match="batch\\['label'\\]"):
        method.loss(params, {"image": batch_of()["image"]}, jax.random.key(0))


def test_without_the_weight_mae_has_no_label_head():
    method = build_method(supervised_config(weight=0.0))
    params = method.init(jax.random.key(0), batch_of())
    assert "supervised" not in params and method.term("supervised") is None
    _, metrics = method.loss(params, batch_of(), jax.random.key(0))
    assert "label_loss" not in metrics
