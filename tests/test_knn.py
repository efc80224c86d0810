import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from mmjax.evaluate import knn_accuracy


def test_majority_vote_matches_scikit_learn_cosine_knn():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(5, 12))
    y = rng.integers(0, 5, 400)
    x = centers[y] + 1.5 * rng.normal(size=(400, 12))
    ours = knn_accuracy(x[:300], y[:300], x[300:], y[300:], k=7, temperature=None)
    ref = KNeighborsClassifier(n_neighbors=7, metric="cosine").fit(x[:300], y[:300]).score(x[300:], y[300:])
    assert ours == pytest.approx(ref)
    assert 0.4 < ours < 1.0  # the data are hard enough for the comparison to mean something


def test_weighted_knn_learns_clusters_and_not_noise():
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(4, 8)) * 3
    y = rng.integers(0, 4, 500)
    x = centers[y] + rng.normal(size=(500, 8))
    assert knn_accuracy(x[:400], y[:400], x[400:], y[400:], k=10) > 0.95
    noise = rng.integers(0, 4, 500)
    assert knn_accuracy(x[:400], noise[:400], x[400:], noise[400:], k=10) < 0.45


def test_bad_k_is_named():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="k=5"):
        knn_accuracy(x, np.zeros(3, int), x, np.zeros(3, int), k=5)
