"""HPM (`mask.kind=hard_patch` on MAE): the loss-predictor objectives against the reference's formulas,
the EMA teacher, masks from its predicted losses, and a few trainer-style steps."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mmjax.config import ConfigError
from mmjax.losses import masked_loss, normalized_regression_loss, pairwise_ranking_loss, token_loss
from mmjax.methods import build_method, mae, simmim
from mmjax.methods.mask_teacher import teacher_inputs
from mmjax.targets import make_target
from mmjax.train.defaults import training_sections
from tests.feature_helpers import digit_images, run_steps

STEPS = 12


def tiny_config() -> ml_collections.ConfigDict:
    """8 x 8 digits, 2 px patches: 16 tokens, 12 hidden at MAE's ratio."""
    config = training_sections(mae.default_config())
    config.model.update(size=None, image_size=8, patch_size=2, channels=1, width=16, depth=1, heads=2, mlp_dim=32)
    config.decoder.update(width=16, depth=1, heads=2, mlp_dim=32)
    config.mask.kind = "hard_patch"
    config.teacher.ema_ramp = 0.5
    config.train.update(steps=STEPS, lr=3e-3, warmup_steps=2)
    return config


def reference_ranking(pred, target, weights):
    """HPM's relative objective over each example's counted tokens, written as loops (log of sigmoid, no epsilon)."""
    total, labelled = 0.0, 0
    for b in range(pred.shape[0]):
        idx = np.flatnonzero(weights[b])
        for i in idx:
            for j in idx:
                if target[b, j] == target[b, i]:
                    continue
                p = 1 / (1 + np.exp(-(pred[b, j] - pred[b, i])))
                total -= np.log(p) if target[b, j] > target[b, i] else np.log(1 - p)
                labelled += 1
    return total / labelled


def test_loss_predictor_objectives_match_their_formulas():
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(3, 10)), rng.normal(size=(3, 10))
    target[0, 1] = target[0, 2]  # a tie carries no label
    weights = rng.random((3, 10)) < 0.7
    got = float(pairwise_ranking_loss(jnp.asarray(pred), jnp.asarray(target), jnp.asarray(weights)))
    np.testing.assert_allclose(got, reference_ranking(pred, target, weights), rtol=1e-5)
    # Predictions in the targets' order, far apart, cost almost nothing; reversed, a lot.
    ranks = 20.0 * np.argsort(np.argsort(target, axis=1), axis=1)
    assert float(pairwise_ranking_loss(jnp.asarray(ranks), jnp.asarray(target), jnp.asarray(weights))) < 1e-6
    assert float(pairwise_ranking_loss(jnp.asarray(-ranks), jnp.asarray(target), jnp.asarray(weights))) > 10
    want = []
    for b in range(3):
        t = target[b, weights[b]]
        standard = (t - t.mean()) / np.sqrt(t.var(ddof=1) + 1e-6)
        want.extend((pred[b, weights[b]] - standard) ** 2)
    got = float(normalized_regression_loss(jnp.asarray(pred), jnp.asarray(target), jnp.asarray(weights)))
    np.testing.assert_allclose(got, np.mean(want), rtol=1e-5)


@pytest.fixture(scope="module")
def method():
    return build_method(tiny_config())


@pytest.fixture(scope="module")
def images():
    return digit_images(16)


@pytest.fixture(scope="module")
def params(method, images):
    return jax.jit(method.init)(jax.random.key(0), {"image": images})


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_the_teacher_starts_as_a_copy_is_frozen_and_follows_the_ema(method, params):
    assert method.term("hpm") is not None and "blocks" in params["hpm"]  # the add-on term's own params
    student = {k: v for k, v in params.items() if k not in ("teacher", "steps_seen")}
    for a, b in zip(leaves(params["teacher"]), leaves(student), strict=True):
        np.testing.assert_array_equal(a, b)
    trainable = method.trainable(params)
    assert not any(jax.tree.leaves(trainable["teacher"])) and not trainable["steps_seen"]
    assert all(jax.tree.leaves({k: trainable[k] for k in ("encoder", "decoder", "hpm")}))
    moved = {**params, "encoder": jax.tree.map(lambda x: x + 1.0, params["encoder"]), "steps_seen": jnp.float32(2)}
    out = method.after_step(moved, None, jnp.int32(2))
    m = 0.999 + (0.9999 - 0.999) * 2 / (STEPS // 2)  # the decay ramps over teacher.ema_ramp * train.steps = 6 steps
    for new, t, s in zip(
        leaves(out["teacher"]["encoder"]), leaves(params["encoder"]), leaves(moved["encoder"]), strict=True
    ):
        np.testing.assert_allclose(new, m * t + (1 - m) * s, rtol=1e-6, atol=1e-7)
    assert float(out["steps_seen"]) == 3.0
    teacher = method.term("teacher")
    np.testing.assert_allclose(
        [teacher.decay(0), teacher.decay(6), teacher.decay(12)], [0.999, 0.9999, 0.9999], rtol=1e-7
    )


def test_masks_hide_the_patches_the_teacher_expects_hardest(images, params):
    config = tiny_config()
    config.mask.hard_patch.update(alpha_start=1.0, alpha_end=1.0)  # every hidden patch by predicted loss
    method = build_method(config)
    scores = np.asarray(teacher_inputs(method, params, images)["predicted_loss"])
    mask = np.asarray(method.predict(params, {"image": images}, jax.random.key(3))[1].mask)
    top = np.argsort(-scores, axis=1)[:, :12]
    for b in range(len(images)):
        assert set(np.flatnonzero(mask[b])) == set(top[b])
    # At step 0 of the default schedule (alpha 0 -> 0.5) the mask is random: not the top patches.
    early = np.asarray(build_method(tiny_config()).predict(params, {"image": images}, jax.random.key(3))[1].mask)
    assert early.sum(axis=1).tolist() == [12] * len(images)
    assert any(set(np.flatnonzero(early[b])) != set(top[b]) for b in range(len(images)))


def test_the_loss_adds_the_weighted_ranking_objective(method, params, images):
    batch = {"image": images}
    total, metrics = method.loss(params, batch, jax.random.key(4))
    step = method.forward(params, batch, jax.random.key(4), train=True)
    pred, mask = step.pred, step.mask
    predicted = method.term("hpm").predicted_loss(params, step.out)
    target = make_target(method.target_part, images, 2)
    recon = masked_loss(method.loss_part, pred, target, mask.mask)
    ranking = pairwise_ranking_loss(predicted, token_loss(method.loss_part, pred, target), mask.mask)
    np.testing.assert_allclose(float(metrics["reconstruction_loss"]), float(recon), rtol=1e-6)
    np.testing.assert_allclose(float(total), float(recon + ranking), rtol=1e-6)
    assert float(metrics["hard_share"]) == 0.0 and float(metrics["teacher_decay"]) == pytest.approx(0.999)


def test_trainer_steps_leave_the_teacher_without_gradient_and_learn_to_rank(method, params, images):
    (before, after, grads, _), final, losses = run_steps(method, tiny_config().train, params, images, STEPS)
    assert all(np.all(g == 0) for g in leaves(grads["teacher"]))
    assert any(np.any(g != 0) for g in leaves(grads["hpm"]["blocks"]))
    assert float(final["steps_seen"]) == STEPS
    for new, t, s in zip(
        leaves(after["teacher"]),
        leaves(before["teacher"]),
        leaves({k: after[k] for k in ("decoder", "encoder", "hpm")}),
        strict=True,
    ):
        np.testing.assert_allclose(new, 0.999 * t + 0.001 * s, rtol=1e-5, atol=1e-7)
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses


def test_methods_that_cannot_predict_losses_refuse_the_kind():
    config = simmim.default_config()
    config.mask.kind = "hard_patch"
    with pytest.raises(ConfigError, match=r"mask.kind='hard_patch' reads the 'predicted_loss' score map.*'simmim'"):
        build_method(config)
    config = tiny_config()
    config.hpm.ema_end = 1.5
    with pytest.raises(ConfigError, match="hpm.ema_end"):
        build_method(config)
