"""I-JEPA: EMA target encoder, zero target gradient, target-only predictor, collapse monitor, training."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mmjax.methods import jepa
from mmjax.methods.feature_targets import batch_feature_std, layer_norm_no_affine
from mmjax.models.jepa import JEPAModel
from mmjax.train.defaults import training_sections
from mmjax.train.optimizer import weight_decay_schedule
from tests.feature_helpers import digit_images, run_steps

STEPS = 25


def tiny_config() -> ml_collections.ConfigDict:
    """8 x 8 digits, 2 px patches: a 4 x 4 grid, two target blocks."""
    config = training_sections(jepa.default_config())
    config.model.update(size=None, image_size=8, patch_size=2, channels=1, width=16, depth=1, heads=2, mlp_dim=32)
    config.predictor.update(width=8, depth=1, heads=2, mlp_dim=16)
    config.jepa.update(num_targets=2, min_keep=3)
    config.train.update(steps=STEPS, lr=3e-3, warmup_steps=2, weight_decay=0.04, weight_decay_end=0.4)
    return config


@pytest.fixture(scope="module")
def method():
    return jepa.JEPA.from_config(tiny_config())


@pytest.fixture(scope="module")
def images():
    return digit_images(16)


@pytest.fixture(scope="module")
def params(method, images):
    return jax.jit(method.init)(jax.random.key(0), {"image": images})


@pytest.fixture(scope="module")
def trained(method, params, images):
    return run_steps(method, tiny_config().train, params, images, STEPS)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_target_encoder_starts_as_a_copy_and_is_frozen(method, params):
    for a, b in zip(leaves(params["target_encoder"]), leaves(params["context_encoder"]), strict=True):
        np.testing.assert_array_equal(a, b)
    trainable = method.trainable(params)
    assert not any(jax.tree.leaves(trainable["target_encoder"])) and not trainable["momentum"]
    assert all(jax.tree.leaves(trainable["context_encoder"])) and all(jax.tree.leaves(trainable["predictor"]))


def test_ema_update_equals_the_formula_at_the_scheduled_momentum(method, params):
    moved = {**params, "context_encoder": jax.tree.map(lambda x: x + 1.0, params["context_encoder"])}
    step = 3
    m = 0.996 + (1.0 - 0.996) * step / STEPS
    out = method.after_step(moved, None, jnp.int32(step))
    for new, t, c in zip(
        leaves(out["target_encoder"]), leaves(moved["target_encoder"]), leaves(moved["context_encoder"]), strict=True
    ):
        np.testing.assert_allclose(new, m * t + (1 - m) * c, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out["momentum"], 0.996 + 0.004 * (step + 1) / STEPS, rtol=1e-7)
    np.testing.assert_allclose([method.momentum(0), method.momentum(STEPS), method.momentum(2 * STEPS)], [0.996, 1, 1])


def test_no_cls_token_and_features_come_from_the_target_encoder(method, params, images):
    # I-JEPA's encoders have no cls token (none takes part in attention), and the paper
    # evaluates the target encoder.
    assert "cls_token" not in params["context_encoder"] and "cls_token" not in params["target_encoder"]
    shifted = jax.tree.map(lambda x: x + 0.1, params["context_encoder"])
    moved_context = {**params, "context_encoder": shifted}
    moved_target = {**params, "target_encoder": jax.tree.map(lambda x: x + 0.1, params["target_encoder"])}
    base = np.asarray(method.features(params, images, pool="tokens"))
    assert base.shape == (len(images), 1 + 16, 16)
    np.testing.assert_allclose(base[:, 0], base[:, 1:].mean(axis=1), rtol=1e-5, atol=1e-6)  # the pooled row
    np.testing.assert_array_equal(np.asarray(method.features(moved_context, images, pool="tokens")), base)
    assert not np.allclose(np.asarray(method.features(moved_target, images, pool="tokens")), base)


def test_a_train_step_gives_the_target_zero_gradient_and_only_the_ema_update(trained):
    (before, after, grads, _), _, _ = trained
    assert all(np.all(g == 0) for g in leaves(grads["target_encoder"]))
    assert any(np.any(g != 0) for g in leaves(grads["context_encoder"]))
    assert any(np.any(g != 0) for g in leaves(grads["predictor"]))
    # The target moved only by the EMA (step 0: m = 0.996) towards the updated online encoder.
    for new, t, c in zip(
        leaves(after["target_encoder"]), leaves(before["target_encoder"]), leaves(after["context_encoder"]), strict=True
    ):
        np.testing.assert_allclose(new, 0.996 * t + 0.004 * c, rtol=1e-5, atol=1e-7)


def test_a_few_steps_reduce_the_loss(trained):
    _, _, losses = trained
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3]), losses


def test_predictor_outputs_target_rows_only_and_ignores_hidden_pixels(method, params, images):
    masks = method.make_masks(jax.random.key(5), images.shape[0])
    predict = jax.jit(lambda x: method.predict(params, x, masks)[0])
    pred = predict(images)
    batch, num_targets, size = masks.target_ids.shape
    assert pred.shape == (batch, num_targets, size, 16)  # one row per target position, encoder width
    # Change every pixel outside the context (the target blocks included): predictions stay.
    outside = np.repeat(np.repeat(~np.asarray(masks.context_mask).reshape(batch, 4, 4), 2, 1), 2, 2)[..., None]
    noise = np.asarray(jax.random.normal(jax.random.key(6), images.shape))
    valid = np.asarray(masks.target_valid)
    changed = predict(jnp.where(outside, images + 3.0 * noise, images))
    np.testing.assert_allclose(np.asarray(changed)[valid], np.asarray(pred)[valid], atol=1e-5)
    # ... while changing the context pixels moves them (so this test can fail).
    moved = predict(jnp.where(outside, images, images + 3.0 * noise))
    assert np.abs(np.asarray(moved)[valid] - np.asarray(pred)[valid]).max() > 1e-3


def test_collapse_monitor_equals_numpy_std(method, params, images, trained):
    feats = np.asarray(jax.random.normal(jax.random.key(7), (5, 3))) * np.array([1.0, 0.1, 2.0])
    stats = batch_feature_std(jnp.asarray(feats))
    np.testing.assert_allclose(stats["mean_std"], np.std(feats, axis=0).mean(), rtol=1e-5)
    np.testing.assert_allclose(stats["min_std"], np.std(feats, axis=0).min(), rtol=1e-5)
    np.testing.assert_allclose(batch_feature_std(jnp.ones((4, 3)))["mean_std"], 0.0)  # collapsed
    (_, _, _, metrics), _, _ = trained  # the first step's metrics, before any update
    encode = jax.jit(lambda p, x: method.model.apply({"params": p}, x, method=JEPAModel.encode_target))
    tokens = encode(params, images)
    expected = np.std(np.asarray(tokens).mean(axis=1), axis=0)
    np.testing.assert_allclose(
        [metrics["target_std_mean"], metrics["target_std_min"]], [expected.mean(), expected.min()], rtol=1e-4
    )
    np.testing.assert_allclose(metrics["momentum"], 0.996)


def test_layer_norm_targets_have_zero_mean_unit_variance():
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype(np.float32) * 4.0 + 1.0
    y = np.asarray(layer_norm_no_affine(x))
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(-1), 1.0, rtol=1e-4)


def test_weight_decay_rises_by_cosine():
    config = ml_collections.ConfigDict({"weight_decay": 0.04, "weight_decay_end": 0.4, "steps": 100})
    wd = weight_decay_schedule(config)
    np.testing.assert_allclose([wd(0), wd(50), wd(100)], [0.04, 0.22, 0.4], rtol=1e-5)
    assert weight_decay_schedule(ml_collections.ConfigDict({"weight_decay": 0.05, "steps": 10})) == 0.05


def test_bad_options_are_named():
    config = tiny_config()
    config.jepa.target_scale = (0.3, 0.2)
    with pytest.raises(ValueError, match="jepa.target_scale"):
        jepa.JEPA.from_config(config)
