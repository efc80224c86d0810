import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmjax.masking import mask_from_ranking, random_mask_from_noise, select_lowest, simmim_mask, with_indices
from tests.mask_properties import check_indices, check_key_properties


@settings(max_examples=10, deadline=None)
@given(batch=st.integers(1, 3), n=st.integers(1, 24), seed=st.integers(0, 2**31 - 1))
def test_select_lowest_picks_exact_counts_of_candidates_only(batch, n, seed):
    rng = np.random.default_rng(seed)
    scores = rng.uniform(size=(batch, n)).astype(np.float32)
    candidates = rng.uniform(size=(batch, n)) < 0.6
    counts = rng.integers(0, n + 3, size=batch)
    chosen = np.asarray(select_lowest(jnp.asarray(scores), jnp.asarray(candidates), jnp.asarray(counts)))
    for row in range(batch):
        want = min(counts[row], candidates[row].sum())
        assert chosen[row].sum() == want
        assert not (chosen[row] & ~candidates[row]).any()
        # The chosen ones are the lowest-scoring candidates.
        if 0 < want < candidates[row].sum():
            assert scores[row][chosen[row]].max() < scores[row][candidates[row] & ~chosen[row]].min()


def test_select_lowest_takes_traced_counts_under_jit():
    scores = jax.random.uniform(jax.random.key(0), (3, 10))
    chosen = jax.jit(lambda c: select_lowest(scores, None, c))(jnp.array([0, 4, 10]))
    np.testing.assert_array_equal(np.asarray(chosen).sum(1), [0, 4, 10])


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 24), frac=st.floats(0, 1), seed=st.integers(0, 2**31 - 1))
def test_mask_from_ranking_is_the_count_form_of_mae_masking(n, frac, seed):
    noise = jnp.asarray(np.random.default_rng(seed).uniform(size=(2, n)).astype(np.float32))
    keep = int(n * (1 - frac))
    a = mask_from_ranking(noise, keep)
    b = random_mask_from_noise(noise, frac)
    np.testing.assert_array_equal(np.asarray(a.mask), np.asarray(b.mask))
    np.testing.assert_array_equal(np.asarray(a.ids_keep), np.asarray(b.ids_keep))


def test_with_indices_lists_visible_tokens_in_order():
    hidden = jnp.array([[True, False, True, False, False], [False, False, True, True, False]])
    m = with_indices(hidden, 3)
    np.testing.assert_array_equal(np.asarray(m.ids_keep), [[1, 3, 4], [0, 1, 4]])
    check_indices(m)


def test_simmim_reference_config_hides_ceil_of_cells_in_whole_cells():
    # SimMIM: 192 px images, 32 px mask patches, 4 px tokens -> 48x48 tokens, 6x6 cells.
    m = simmim_mask(jax.random.key(0), 8, (48, 48), 8, 0.6)
    hidden = np.asarray(m.mask).reshape(8, 6, 8, 6, 8)
    cells = hidden[:, :, 0, :, 0]
    # Constant inside each 8x8 cell.
    np.testing.assert_array_equal(hidden, np.broadcast_to(cells[:, :, None, :, None], hidden.shape))
    assert (cells.reshape(8, -1).sum(1) == math.ceil(36 * 0.6)).all()
    assert (np.asarray(m.mask).sum(1) == 22 * 64).all()
    check_indices(m)


def test_simmim_cells_cut_by_the_grid_edge():
    # 7x7 tokens (28 px, 4 px tokens), 2x2-token cells: a 4x4 cell grid cropped to 7x7.
    m = simmim_mask(jax.random.key(1), 16, (7, 7), 2, 0.6)
    assert m.ids_keep is None and m.ids_restore is None
    hidden = np.asarray(m.mask).reshape(16, 7, 7)
    padded = np.pad(hidden, ((0, 0), (0, 1), (0, 1)), mode="edge").reshape(16, 4, 2, 4, 2)
    cells = padded[:, :, 0, :, 0]
    np.testing.assert_array_equal(padded, np.broadcast_to(cells[:, :, None, :, None], padded.shape))
    assert (cells.reshape(16, -1).sum(1) == math.ceil(16 * 0.6)).all()
    # Whole cells cover 4 tokens, edge cells 2, the corner cell 1.
    sizes = np.array([[4, 4, 4, 2]] * 3 + [[2, 2, 2, 1]])
    np.testing.assert_array_equal(hidden.sum((1, 2)), (cells * sizes).sum((1, 2)))
    assert len(set(hidden.sum((1, 2)).tolist())) > 1


def test_simmim_cells_are_uniform():
    m = simmim_mask(jax.random.key(3), 4000, (4, 4), 2, 0.5)
    freq = np.asarray(m.mask).reshape(4000, 2, 2, 2, 2)[:, :, 0, :, 0].reshape(4000, 4).mean(0)
    np.testing.assert_allclose(freq, 0.5, atol=4 * math.sqrt(0.25 / 4000))


def test_simmim_key_properties_and_errors():
    check_key_properties(lambda k: simmim_mask(k, 4, (8, 8), 2, 0.6))
    with pytest.raises(ValueError, match="mask_patch must be a positive"):
        simmim_mask(jax.random.key(0), 1, (8, 8), 0, 0.5)
    with pytest.raises(ValueError, match="mask_ratio must be in"):
        simmim_mask(jax.random.key(0), 1, (8, 8), 2, 1.2)
