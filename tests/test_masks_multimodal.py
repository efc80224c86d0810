import jax
import numpy as np
import pytest

from mmjax.masking import Mask, disjoint_view_masks, multimodal_budget_masks
from tests.mask_properties import check_indices, check_key_properties

SIZES = (96, 64, 36)


def test_budgets_are_exact_and_disjoint():
    m = multimodal_budget_masks(jax.random.key(0), 64, SIZES, 48, 64)
    inputs, targets = np.asarray(m.input_mask), np.asarray(m.target_mask)
    assert (inputs.sum(1) == 48).all() and (targets.sum(1) == 64).all()
    assert not (inputs & targets).any()
    for ids, mask in [(m.input_ids, inputs), (m.target_ids, targets)]:
        ids = np.asarray(ids)
        for b in range(64):
            assert len(set(ids[b])) == ids.shape[1]
            assert set(ids[b]) == set(np.flatnonzero(mask[b]))
    np.testing.assert_array_equal(np.asarray(m.input_counts).sum(1), 48)
    np.testing.assert_array_equal(np.asarray(m.target_counts).sum(1), 64)
    bounds = np.cumsum((0,) + SIZES)
    per_mod = np.stack([inputs[:, a:b].sum(1) for a, b in zip(bounds[:-1], bounds[1:], strict=True)], 1)
    np.testing.assert_array_equal(per_mod, np.asarray(m.input_counts))
    assert (np.asarray(m.input_counts) <= np.array(SIZES)).all()


def test_large_alpha_splits_evenly_small_alpha_concentrates():
    even = np.asarray(multimodal_budget_masks(jax.random.key(1), 200, SIZES, 30, 30, input_alpha=1e4).input_counts)
    assert (np.abs(even - 10) <= 1).all()
    sparse = np.asarray(multimodal_budget_masks(jax.random.key(1), 200, SIZES, 30, 30, input_alpha=0.05).input_counts)
    assert (sparse.max(1) >= 25).mean() > 0.7  # most budgets go to one modality


def test_a_small_modality_runs_out_and_others_fill_in():
    m = multimodal_budget_masks(jax.random.key(2), 100, (4, 200), 40, 10, input_alpha=(1e4, 1e4))
    counts = np.asarray(m.input_counts)
    np.testing.assert_array_equal(counts, np.tile([4, 36], (100, 1)))


def test_disjoint_views_are_complementary():
    m = disjoint_view_masks(jax.random.key(3), 8, 12, 3)
    visible = ~np.asarray(m.mask)
    assert visible.shape == (3, 8, 12)
    np.testing.assert_array_equal(visible.sum(0), np.ones((8, 12)))  # each token seen by exactly one view
    for v in range(3):
        check_indices(Mask(mask=m.mask[v], ids_keep=m.ids_keep[v], ids_restore=m.ids_restore[v]))
    partial = ~np.asarray(disjoint_view_masks(jax.random.key(3), 8, 12, 2, num_visible=3).mask)
    assert (partial.sum(0) <= 1).all() and (partial.sum(2) == 3).all()


@pytest.mark.parametrize(
    ("make", "leaf"),
    [
        (lambda k: multimodal_budget_masks(k, 4, (8, 8), 4, 4), lambda m: m.input_mask),
        (lambda k: disjoint_view_masks(k, 4, 8, 2), lambda m: m.mask[0]),
    ],
)
def test_key_properties(make, leaf):
    check_key_properties(make, leaf)


def test_errors_name_the_value():
    with pytest.raises(ValueError, match="input_budget \\+ target_budget must be in"):
        multimodal_budget_masks(jax.random.key(0), 1, (4, 4), 6, 6)
    with pytest.raises(ValueError, match="num_views \\* num_visible must be"):
        disjoint_view_masks(jax.random.key(0), 1, 8, 3, 3)
