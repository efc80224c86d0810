"""I-JEPA: EMA target encoder, zero target gradient, target-only predictor, collapse monitor, training."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mmjax.methods import jepa
from mmjax.methods.feature_targets import batch_feature_std, layer_norm_no_affine
from mmjax.models.jepa import JEPAModel
from mmjax.train import train
from mmjax.train.defaults import training_sections
from mmjax.train.optimizer import weight_decay_schedule
from tests.helpers import load_experiment

STEPS = 10


def tiny_config() -> ml_collections.ConfigDict:
    config = training_sections(jepa.default_config())
    config.model.update(size=None, image_size=16, patch_size=4, channels=1, width=16, depth=1, heads=2, mlp_dim=32)
    config.predictor.update(width=8, depth=1, heads=2, mlp_dim=16)
    config.jepa.update(num_targets=2, min_keep=3)
    config.train.steps = STEPS
    return config


@pytest.fixture(scope="module")
def method():
    return jepa.JEPA.from_config(tiny_config())


@pytest.fixture(scope="module")
def images():
    return jax.random.normal(jax.random.key(1), (4, 16, 16, 1))


@pytest.fixture(scope="module")
def params(method, images):
    return jax.jit(method.init)(jax.random.key(0), {"image": images})


def test_target_encoder_starts_as_a_copy_and_is_frozen(method, params):
    for a, b in zip(jax.tree.leaves(params["target_encoder"]), jax.tree.leaves(params["context_encoder"]), strict=True):
        np.testing.assert_array_equal(a, b)
    trainable = method.trainable(params)
    assert not any(jax.tree.leaves(trainable["target_encoder"])) and not trainable["momentum"]
    assert all(jax.tree.leaves(trainable["context_encoder"])) and all(jax.tree.leaves(trainable["predictor"]))


def test_ema_update_equals_the_formula_at_the_scheduled_momentum(method, params):
    # Move the online encoder away from the target so the update is not trivial.
    moved = {**params, "context_encoder": jax.tree.map(lambda x: x + 1.0, params["context_encoder"])}
    step = 3
    m = 0.996 + (1.0 - 0.996) * step / STEPS
    out = jax.jit(method.after_step)(moved, None, jnp.int32(step))
    for new, t, c in zip(
        jax.tree.leaves(out["target_encoder"]),
        jax.tree.leaves(moved["target_encoder"]),
        jax.tree.leaves(moved["context_encoder"]),
        strict=True,
    ):
        np.testing.assert_allclose(new, m * np.asarray(t) + (1 - m) * np.asarray(c), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out["momentum"], 0.996 + 0.004 * (step + 1) / STEPS, rtol=1e-7)
    np.testing.assert_allclose(method.momentum(0), 0.996)
    np.testing.assert_allclose(method.momentum(STEPS), 1.0)
    np.testing.assert_allclose(method.momentum(2 * STEPS), 1.0)  # held at the end


def test_target_encoder_gets_exactly_zero_gradient(method, params, images):
    grads = jax.jit(jax.grad(lambda p: method.loss(p, {"image": images}, jax.random.key(2))[0]))(params)
    assert all(np.all(np.asarray(g) == 0) for g in jax.tree.leaves(grads["target_encoder"]))
    assert any(np.any(np.asarray(g) != 0) for g in jax.tree.leaves(grads["context_encoder"]))
    assert any(np.any(np.asarray(g) != 0) for g in jax.tree.leaves(grads["predictor"]))


def test_predictor_outputs_target_rows_only_and_ignores_hidden_pixels(method, params, images):
    masks = method.make_masks(jax.random.key(5), images.shape[0])
    predict = jax.jit(lambda x: method.predict(params, x, masks)[0])
    pred = predict(images)
    batch, num_targets, size = masks.target_ids.shape
    assert pred.shape == (batch, num_targets, size, 16)  # one row per target position, encoder width
    # Change every pixel outside the context (target blocks included): the predictions do not move.
    outside = np.repeat(np.repeat(~np.asarray(masks.context_mask).reshape(batch, 4, 4), 4, 1), 4, 2)[..., None]
    noise = np.asarray(jax.random.normal(jax.random.key(6), images.shape))
    changed = predict(jnp.where(outside, images + 3.0 * noise, images))
    valid = np.asarray(masks.target_valid)
    np.testing.assert_allclose(np.asarray(changed)[valid], np.asarray(pred)[valid], atol=1e-5)
    # ... while changing the context pixels does move them (the test can fail).
    moved = predict(jnp.where(outside, images, images + 3.0 * noise))
    assert np.abs(np.asarray(moved)[valid] - np.asarray(pred)[valid]).max() > 1e-3


def test_collapse_monitor_equals_numpy_std(method, params, images):
    feats = np.asarray(jax.random.normal(jax.random.key(7), (5, 3))) * np.array([1.0, 0.1, 2.0])
    stats = batch_feature_std(jnp.asarray(feats))
    np.testing.assert_allclose(stats["mean_std"], np.std(feats, axis=0).mean(), rtol=1e-5)
    np.testing.assert_allclose(stats["min_std"], np.std(feats, axis=0).min(), rtol=1e-5)
    np.testing.assert_allclose(batch_feature_std(jnp.ones((4, 3)))["mean_std"], 0.0)  # collapsed
    _, metrics = jax.jit(method.loss)(params, {"image": images}, jax.random.key(2))
    tokens = method.model.apply({"params": params}, images, method=JEPAModel.encode_target)
    expected = np.std(np.asarray(tokens).mean(axis=1), axis=0)
    np.testing.assert_allclose(metrics["target_std_mean"], expected.mean(), rtol=1e-4)
    np.testing.assert_allclose(metrics["target_std_min"], expected.min(), rtol=1e-4)
    np.testing.assert_allclose(metrics["momentum"], 0.996)


def test_layer_norm_targets_have_zero_mean_unit_variance():
    x = jax.random.normal(jax.random.key(3), (2, 5, 8)) * 4.0 + 1.0
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


def test_a_few_steps_reduce_the_loss_and_move_the_target(tmp_path):
    config = load_experiment("jepa_mnist", "runlocal")
    config.data = ml_collections.ConfigDict(
        {"source": "digits", "num_test": 297, "image_size": (8, 8), "channels": 1, "mean": (0.3,), "std": (0.4,)}
    )
    config.data.update(crop_scale=None, flip=False, num_threads=0)
    config.model.update(image_size=8, patch_size=2)
    config.jepa.update(min_keep=3)
    config.train.update(steps=30, batch_size=32, lr=2e-3, warmup_steps=3, log_every=1, checkpoint_every=100)
    config.train.update(tensorboard=False, async_checkpoints=False)
    result = train(config, str(tmp_path))
    losses = [row["loss"] for row in result.history]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    params = jax.device_get(result.state.params)
    np.testing.assert_allclose(params["momentum"], 0.996 + 0.004 * 30 / 30, rtol=1e-6)
    first = jax.tree.leaves(params["target_encoder"])
    online = jax.tree.leaves(params["context_encoder"])
    assert any(not np.allclose(a, b) for a, b in zip(first, online, strict=True))  # EMA lags the online encoder
    assert all(np.isfinite(row["target_std_min"]) for row in result.history)
