import jax
import numpy as np
import pytest

from mmjax.impute import MaskedImputer, impute_table
from tests.test_impute import TINY, correlated_table

RECIPE = {**TINY, "epochs": 30, "tta_passes": 1}  # members compared with plain impute_table


@pytest.fixture(scope="module")
def ensemble():
    table, masked = correlated_table(rows=96, cols=5, seed=3)
    return MaskedImputer(seed=0, ensemble=3, **RECIPE).fit(masked), table, masked


def test_ensemble_output_is_the_mean_of_its_members(ensemble):
    imputer, _, masked = ensemble
    assert imputer.losses_.shape[0] == 3
    # Members are distinct models: different initializations, batches and re-masks.
    assert not np.allclose(imputer.losses_[0], imputer.losses_[1])
    values = imputer.codec_.encode(masked)
    members = [
        impute_table(imputer.method_, jax.tree.map(lambda leaf, k=k: leaf[k], imputer.params_), values)
        for k in range(3)
    ]
    assert np.abs(members[0] - members[1]).max() > 1e-3
    expected = imputer.codec_.decode(np.mean(members, axis=0), masked)
    np.testing.assert_allclose(imputer.transform(masked), expected, rtol=1e-5, atol=1e-5)


def test_ensemble_keeps_observed_cells_and_is_reproducible(ensemble):
    imputer, table, masked = ensemble
    filled = imputer.transform(masked)
    observed = ~np.isnan(masked)
    np.testing.assert_array_equal(filled[observed].view(np.uint64), masked[observed].view(np.uint64))
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(MaskedImputer(seed=0, ensemble=3, **RECIPE).fit_transform(masked), filled)
    removed = ~observed
    means = np.where(removed, np.nanmean(masked, axis=0), masked)
    rmse = np.sqrt(np.mean((filled[removed] - table[removed]) ** 2))
    assert rmse < 0.7 * np.sqrt(np.mean((means[removed] - table[removed]) ** 2))


def test_bad_ensemble_size_is_refused():
    with pytest.raises(ValueError, match="ensemble must be >= 1.*got 0"):
        MaskedImputer(ensemble=0, **RECIPE).fit(correlated_table(rows=20, cols=3)[1])
