"""MAE with a target budget (`budget.target_ratio` < 1, the `TargetBudget` term): 4M's budget sampler on
one modality, and a decoder that runs only on the visible and target patches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.config import ConfigError
from mmjax.losses import masked_loss
from mmjax.methods import build_method
from mmjax.targets import make_target
from tests.test_parts import tiny_mae_config


def budget_config(ratio: float = 0.5):
    config = tiny_mae_config()
    config.budget.target_ratio = ratio
    return config


def test_the_budget_keeps_maes_visible_count_and_draws_targets_among_the_hidden():
    method = build_method(budget_config())
    mask, target_ids = method.term("budget").draw_budget(jax.random.key(0), 64)
    assert mask.ids_keep.shape == (64, 4) and target_ids.shape == (64, 6)  # 16 patches: 4 visible, 6 of 12 hidden
    hidden = np.asarray(mask.mask)
    ids = np.asarray(target_ids)
    for b in range(64):
        assert hidden[b, ids[b]].all() and len(set(ids[b])) == 6
    # Uniform: each patch is a target 6/16 of the time, within 4 standard errors.
    counts = np.zeros(16)
    for b in range(64):
        counts[ids[b]] += 1
    p = 6 / 16
    assert np.all(np.abs(counts / 64 - p) < 4 * np.sqrt(p * (1 - p) / 64))


def test_decoding_a_permutation_of_every_patch_is_the_full_decoder():
    method = build_method(tiny_mae_config())
    batch = {"image": jax.random.normal(jax.random.key(0), (2, 16, 16, 1))}
    params = method.init(jax.random.key(0), batch)
    mask = method.make_mask(jax.random.key(1), 2)
    full = method.model.apply({"params": params}, batch["image"], mask)[0]
    order = jnp.stack([jax.random.permutation(jax.random.key(i), 16) for i in range(2)])
    some = method.model.apply({"params": params}, batch["image"], mask, order)[0]
    np.testing.assert_allclose(np.asarray(some), np.asarray(full), rtol=1e-5, atol=1e-6)
    few = np.asarray(method.model.apply({"params": params}, batch["image"], mask, order[:, :5])[0])
    for b in range(2):
        rest = np.setdiff1d(np.arange(16), np.asarray(order[b, :5]))
        assert np.all(few[b, rest] == 0) and np.any(few[b, np.asarray(order[b, :5])] != 0)


def test_the_loss_counts_only_the_target_patches():
    method = build_method(budget_config())
    batch = {"image": jax.random.normal(jax.random.key(0), (2, 16, 16, 1))}
    params = method.init(jax.random.key(0), batch)
    loss, metrics = method.loss(params, batch, jax.random.key(3))
    mask, target_ids = method.term("budget").draw_budget(jax.random.key(3), 2)
    pred = method.model.apply(
        {"params": params}, batch["image"], mask, jnp.concatenate([mask.ids_keep, target_ids], 1)
    )[0]
    weights = jnp.zeros((2, 16), bool).at[jnp.arange(2)[:, None], target_ids].set(True)
    want = masked_loss(method.loss_part, pred, make_target(method.target_part, batch["image"], 4), weights)
    np.testing.assert_allclose(float(loss), float(want), rtol=1e-6)
    assert float(metrics["target_fraction"]) == 6 / 16 and float(metrics["mask_ratio"]) == 0.75
    grads = jax.grad(lambda p: method.loss(p, batch, jax.random.key(3))[0])(params)
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))


def test_a_target_budget_needs_the_random_mask_and_one_view():
    config = budget_config()
    config.mask.kind = "blockwise"
    with pytest.raises(ConfigError, match=r"budget.target_ratio=0.5 .* expected mask.kind='random'"):
        build_method(config)
    config = budget_config()
    config.dmjd.num_views = 2
    with pytest.raises(ConfigError, match="budget and dmjd both draw the masks"):
        build_method(config)
    with pytest.raises(ConfigError, match="budget.target_ratio"):
        build_method(budget_config(0.0))
