import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmjax.masking import (
    Mask,
    gather_tokens,
    num_visible_tokens,
    random_mask,
    random_mask_from_noise,
    restore_with_mask_tokens,
)


def reference_masking(noise: np.ndarray, ratio: float):
    """The rule of facebookresearch/mae `random_masking`, written out in numpy."""
    n = noise.shape[1]
    keep = int(n * (1 - ratio))
    ids_shuffle = np.argsort(noise, axis=1, kind="stable")
    ids_restore = np.argsort(ids_shuffle, axis=1, kind="stable")
    mask = np.ones_like(noise)
    mask[:, :keep] = 0
    mask = np.take_along_axis(mask, ids_restore, axis=1)
    return mask.astype(bool), ids_shuffle[:, :keep], ids_restore


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(1, 4),
    n=st.integers(1, 64),
    ratio=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_from_noise_equals_reference_rule(batch, n, ratio, seed):
    noise = np.random.default_rng(seed).uniform(size=(batch, n)).astype(np.float32)
    m = random_mask_from_noise(jnp.asarray(noise), ratio)
    mask, ids_keep, ids_restore = reference_masking(noise, ratio)
    keep = int(n * (1 - ratio))
    assert m.ids_keep.shape == (batch, keep) and m.num_visible == keep
    np.testing.assert_array_equal(np.asarray(m.mask), mask)
    np.testing.assert_array_equal(np.asarray(m.ids_keep), ids_keep)
    np.testing.assert_array_equal(np.asarray(m.ids_restore), ids_restore)
    assert (np.asarray(m.mask).sum(axis=1) == n - keep).all()


@pytest.mark.parametrize(
    ("n", "ratio", "keep"), [(196, 0.75, 49), (16, 0.75, 4), (10, 0.33, 6), (7, 0.0, 7), (5, 1.0, 0)]
)
def test_kept_count_is_int_of_n_times_one_minus_r(n, ratio, keep):
    assert num_visible_tokens(n, ratio) == keep
    m = random_mask(jax.random.key(0), 3, n, ratio)
    assert m.ids_keep.shape == (3, keep)
    assert (np.asarray(m.mask).sum(1) == n - keep).all()


def test_ids_restore_inverts_the_shuffle():
    m = random_mask(jax.random.key(1), 4, 20, 0.6)
    restore = np.asarray(m.ids_restore)
    keep = np.asarray(m.ids_keep)
    for row, kept in zip(restore, keep, strict=True):
        assert sorted(row) == list(range(20))  # a permutation
        # Token kept[j] sits at rank j of the shuffle, so restore[kept[j]] == j.
        np.testing.assert_array_equal(row[kept], np.arange(len(kept)))
    # Visible tokens are exactly the unmasked ones.
    hidden = np.asarray(m.mask)
    for row_keep, row_hidden in zip(keep, hidden, strict=True):
        assert set(row_keep) == set(np.flatnonzero(~row_hidden))


def test_gather_then_restore_puts_tokens_back_in_order():
    x = jax.random.normal(jax.random.key(2), (3, 12, 5))
    m = random_mask(jax.random.key(3), 3, 12, 0.5)
    visible = gather_tokens(x, m.ids_keep)
    assert visible.shape == (3, 6, 5)
    token = jnp.full((5,), 7.0)
    restored = restore_with_mask_tokens(visible, token, m.ids_restore)
    hidden = np.asarray(m.mask)[..., None]
    np.testing.assert_array_equal(np.where(hidden, 7.0, np.asarray(x)), np.asarray(restored))


def test_same_key_same_mask_different_keys_and_examples_differ():
    a = random_mask(jax.random.key(5), 8, 64, 0.75)
    b = random_mask(jax.random.key(5), 8, 64, 0.75)
    c = random_mask(jax.random.key(6), 8, 64, 0.75)
    np.testing.assert_array_equal(np.asarray(a.mask), np.asarray(b.mask))
    assert not np.array_equal(np.asarray(a.mask), np.asarray(c.mask))
    rows = {tuple(r) for r in np.asarray(a.mask)}
    assert len(rows) == 8  # every example has its own mask


def test_jit_and_vmap():
    jitted = jax.jit(random_mask, static_argnums=(1, 2, 3))
    m = jitted(jax.random.key(7), 2, 16, 0.75)
    np.testing.assert_array_equal(np.asarray(m.mask), np.asarray(random_mask(jax.random.key(7), 2, 16, 0.75).mask))

    keys = jax.random.split(jax.random.key(8), 5)
    per_key = jax.vmap(lambda k: random_mask(k, 2, 16, 0.75))(keys)
    assert isinstance(per_key, Mask)
    assert per_key.mask.shape == (5, 2, 16) and per_key.ids_keep.shape == (5, 2, 4)
    np.testing.assert_array_equal(np.asarray(per_key.mask[3]), np.asarray(random_mask(keys[3], 2, 16, 0.75).mask))

    noise = jax.random.uniform(jax.random.key(9), (4, 16))
    rowwise = jax.vmap(lambda row: random_mask_from_noise(row[None], 0.5).mask[0])(noise)
    np.testing.assert_array_equal(np.asarray(rowwise), np.asarray(random_mask_from_noise(noise, 0.5).mask))


def test_bad_ratio_is_rejected_with_the_value():
    with pytest.raises(ValueError, match="mask_ratio must be in \\[0, 1\\], got 1.5"):
        random_mask(jax.random.key(0), 1, 4, 1.5)
    with pytest.raises(TypeError, match="Python float"):
        jax.jit(lambda r: random_mask_from_noise(jnp.zeros((1, 4)), r))(0.5)
    with pytest.raises(ValueError, match="noise must be \\[B, N\\]"):
        random_mask_from_noise(jnp.zeros((4,)), 0.5)
