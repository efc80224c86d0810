"""The fine-tuning recipe's random parts: stochastic depth (drop path) and Mixup / CutMix."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.models.config import TransformerConfig
from mmjax.models.transformer import DROP_PATH_RNG, EncoderBlock, TransformerStack
from mmjax.ops.mixing import mix_batch


def test_drop_path_keeps_or_drops_each_example_s_branch_whole_and_scales_the_kept():
    p, batch = 0.3, 2000
    x = jnp.broadcast_to(jax.random.normal(jax.random.key(0), (1, 5, 8)), (batch, 5, 8))
    block = EncoderBlock(config=TransformerConfig(depth=1, heads=2, mlp_dim=16), drop_path=p)
    params = block.init(jax.random.key(1), x)["params"]
    # Only the attention branch: with the MLP's output zero, out - x is either 0 or branch / (1 - p).
    params["mlp"]["fc2"] = jax.tree.map(jnp.zeros_like, params["mlp"]["fc2"])
    whole = block.apply({"params": params}, x)  # no rng: nothing drops
    plain = EncoderBlock(config=TransformerConfig(depth=1, heads=2, mlp_dim=16)).apply({"params": params}, x)
    np.testing.assert_array_equal(whole, plain)
    dropped = block.apply({"params": params}, x, rngs={DROP_PATH_RNG: jax.random.key(2)})
    branch, got = np.asarray(whole - x)[0], np.asarray(dropped - x)
    kept = np.array([np.allclose(g, branch / (1 - p), atol=1e-5) for g in got])
    zero = np.array([np.allclose(g, 0.0) for g in got])
    assert np.all(kept ^ zero)
    assert abs(kept.mean() - (1 - p)) < 0.04, kept.mean()


def test_a_stack_s_first_block_never_drops_and_scan_is_refused():
    x = jax.random.normal(jax.random.key(0), (64, 5, 8))
    one = TransformerStack(
        config=TransformerConfig(depth=1, heads=2, mlp_dim=16, drop_path=0.9)
    )  # timm: linspace(0, 0.9, 1) = [0]
    params = one.init(jax.random.key(1), x)["params"]
    np.testing.assert_array_equal(
        one.apply({"params": params}, x, rngs={DROP_PATH_RNG: jax.random.key(2)})[0],
        one.apply({"params": params}, x)[0],
    )
    two = TransformerStack(config=TransformerConfig(depth=2, heads=2, mlp_dim=16, drop_path=0.9))
    params = two.init(jax.random.key(1), x)["params"]
    drops = two.apply({"params": params}, x, rngs={DROP_PATH_RNG: jax.random.key(2)})[0]
    assert not np.allclose(drops, two.apply({"params": params}, x)[0])
    with pytest.raises(ValueError, match="drop path 0.9 with model.scan=True"):
        TransformerStack(config=TransformerConfig(depth=2, heads=2, mlp_dim=16, drop_path=0.9, scan=True)).init(
            jax.random.key(1), x
        )


def batch(seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(6, 12, 10, 1)).astype(np.float32)
    targets = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 6)] * 0.9 + 0.025  # smoothed, rows sum to 1
    return jnp.asarray(images), jnp.asarray(targets)


def test_mixup_mixes_images_and_labels_with_the_same_weight():
    images, targets = batch()
    mixed, mixed_targets = mix_batch(jax.random.key(3), images, targets, mixup_alpha=0.8, cutmix_alpha=0.0)
    # Each image is its own and its mirror's at one weight, the same for the labels and the whole batch.
    np.testing.assert_allclose(mixed_targets.sum(-1), 1.0, rtol=1e-6)
    lams = []
    for i in range(6):
        a, b = images[i], images[5 - i]
        lam_i = float(jnp.vdot(mixed[i] - b, a - b) / jnp.vdot(a - b, a - b))
        np.testing.assert_allclose(mixed[i], lam_i * a + (1 - lam_i) * b, atol=1e-5)
        np.testing.assert_allclose(mixed_targets[i], lam_i * targets[i] + (1 - lam_i) * targets[5 - i], atol=1e-5)
        lams.append(lam_i)
    np.testing.assert_allclose(lams, lams[0], atol=1e-5)
    assert 0 < lams[0] < 1
    same, same_targets = mix_batch(jax.random.key(3), images, targets, 0.0, 0.0)
    assert same is images and same_targets is targets


def test_cutmix_pastes_one_box_and_weighs_the_labels_by_its_area():
    images, targets = batch(1)
    for seed in range(8):
        mixed, mixed_targets = mix_batch(jax.random.key(seed), images, targets, mixup_alpha=0.0, cutmix_alpha=1.0)
        pasted = np.asarray(jnp.all(mixed == images[::-1], axis=(0, 3)) & jnp.any(mixed != images, axis=(0, 3)))
        own = np.asarray(jnp.all(mixed == images, axis=(0, 3)))
        assert np.all(pasted ^ own)  # every pixel is all own or all mirrored, the same pixels for every image
        rows, cols = np.nonzero(pasted)
        if rows.size:  # one rectangle
            assert pasted[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
        lam = 1 - pasted.mean()
        np.testing.assert_allclose(mixed_targets, lam * targets + (1 - lam) * targets[::-1], atol=1e-6)


def test_with_both_each_batch_uses_one_of_the_two():
    images, targets = batch(2)
    kinds = set()
    for seed in range(16):
        mixed, _ = mix_batch(jax.random.key(seed), images, targets, mixup_alpha=0.8, cutmix_alpha=1.0)
        exact = np.asarray((mixed == images) | (mixed == images[::-1]))
        kinds.add("cutmix" if exact.all() else "mixup")
    assert kinds == {"cutmix", "mixup"}
