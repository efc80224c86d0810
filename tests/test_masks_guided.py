import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.masking import (
    attention_guided_mask,
    curriculum_mask,
    hard_patch_mask,
    prior_guided_mask,
    random_mask,
    tube_mask,
)
from tests.mask_properties import check_indices, check_key_properties

B, N = 16, 64
M = N - int(N * (1 - 0.5))  # hidden count at ratio 0.5


def scores(seed=0):
    return jax.random.uniform(jax.random.key(seed), (B, N))


def top(x, k):
    return np.argsort(-np.asarray(x), axis=1)[:, :k]


def test_attmask_high_and_low_hide_the_most_and_least_attended():
    att = scores()
    high = np.asarray(attention_guided_mask(jax.random.key(1), att, 0.5, mode="high").mask)
    low = np.asarray(attention_guided_mask(jax.random.key(1), att, 0.5, mode="low").mask)
    for b in range(B):
        assert set(np.flatnonzero(high[b])) == set(top(att, M)[b])
        assert set(np.flatnonzero(low[b])) == set(top(-att, M)[b])


def test_attmask_hint_reveals_some_top_tokens_and_keeps_the_count():
    att = scores()
    m = attention_guided_mask(jax.random.key(2), att, 0.5, mode="hint", hint_ratio=0.25)
    hidden = np.asarray(m.mask)
    hints = round(0.25 * M)
    check_indices(m)
    assert (hidden.sum(1) == M).all()
    for b in range(B):
        pool = set(top(att, M + hints)[b])
        assert set(np.flatnonzero(hidden[b])) <= pool
    # Which of the top tokens are revealed is random.
    assert not (hidden == np.asarray(attention_guided_mask(jax.random.key(1), att, 0.5, mode="high").mask)).all()


def test_attmask_random_fraction_mixes_in_random_tokens():
    att = scores()
    hidden = np.asarray(attention_guided_mask(jax.random.key(3), att, 0.5, random_fraction=0.5).mask)
    guided = round(M * 0.5)
    assert (hidden.sum(1) == M).all()
    for b in range(B):
        assert set(top(att, guided)[b]) <= set(np.flatnonzero(hidden[b]))
    assert not all(set(np.flatnonzero(hidden[b])) == set(top(att, M)[b]) for b in range(B))


def test_hpm_goes_from_random_to_hard():
    loss = scores(4)
    start = np.asarray(hard_patch_mask(jax.random.key(5), loss, 0.5, 0, 100).mask)
    end = jax.jit(hard_patch_mask, static_argnums=(2, 4))(jax.random.key(5), loss, 0.5, jnp.int32(100), 100)
    check_indices(end)
    end = np.asarray(end.mask)
    assert (start.sum(1) == M).all() and (end.sum(1) == M).all()
    for b in range(B):
        assert set(top(loss, M // 2)[b]) <= set(np.flatnonzero(end[b]))
    # At step 0 the mask ignores the predicted loss: as random as MAE masking.
    loss_np = np.asarray(loss)
    ref = np.asarray(random_mask(jax.random.key(5), B, N, 0.5).mask)
    assert abs(loss_np[start].mean() - loss_np[ref].mean()) < 0.05
    assert loss_np[end].mean() > loss_np[start].mean() + 0.1


def test_prior_guided_follows_the_prior():
    prior = jnp.where(jnp.arange(N) < N // 2, 2.0, 0.0)[None].repeat(512, 0)
    hidden = np.asarray(prior_guided_mask(jax.random.key(6), prior, 0.25).mask)
    assert (hidden.sum(1) == N - int(N * 0.75)).all()
    hi, lo = hidden[:, : N // 2].mean(), hidden[:, N // 2 :].mean()
    assert hi > 2 * lo
    cold = np.asarray(prior_guided_mask(jax.random.key(6), prior, 0.25, temperature=1e-3).mask)
    assert not cold[:, N // 2 :].any()  # tiny temperature: only the top of the prior


def test_curriculum_moves_from_easy_to_hard():
    easy = random_mask(jax.random.key(7), 400, 16, 0.75)
    hard = tube_mask(jax.random.key(8), 400, (1, 4, 4), 0.75)

    def from_hard(step):
        m = curriculum_mask(jax.random.key(9), step, 100, easy, hard)
        return np.all(np.asarray(m.mask) == np.asarray(hard.mask), axis=1) & np.any(
            np.asarray(m.mask) != np.asarray(easy.mask), axis=1
        )

    assert from_hard(0).sum() == 0
    assert from_hard(100).mean() > 0.99
    assert abs(from_hard(50).mean() - 0.5) < 4 * math.sqrt(0.25 / 400)


@pytest.mark.parametrize(
    "make",
    [
        lambda k: attention_guided_mask(k, scores(), 0.5, mode="hint"),
        lambda k: attention_guided_mask(k, scores(), 0.5, random_fraction=0.5),
        lambda k: hard_patch_mask(k, scores(), 0.5, 50, 100),
        lambda k: prior_guided_mask(k, scores(), 0.5),
    ],
)
def test_key_properties(make):
    check_key_properties(make)


def test_errors_name_the_value():
    with pytest.raises(ValueError, match="mode must be"):
        attention_guided_mask(jax.random.key(0), scores(), 0.5, mode="middle")
    with pytest.raises(ValueError, match="attention must be \\[B, N\\]"):
        attention_guided_mask(jax.random.key(0), jnp.zeros(4), 0.5)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        prior_guided_mask(jax.random.key(0), scores(), 0.5, temperature=0.0)


def test_curriculum_combines_fixed_and_variable_count_masks():
    from mmjax.masking import blockwise_mask

    easy = random_mask(jax.random.key(10), 8, 196, 0.5)
    hard = blockwise_mask(jax.random.key(11), 8, (14, 14), 75)
    m = curriculum_mask(jax.random.key(12), 100, 100, easy, hard)
    assert m.ids_keep is None
    np.testing.assert_array_equal(np.asarray(m.mask), np.asarray(hard.mask))
