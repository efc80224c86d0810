"""Out-of-distribution scores against scikit-learn and scipy: AUROC, kNN cosine distance, Mahalanobis distance."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.covariance import EmpiricalCovariance
from sklearn.metrics import roc_auc_score

from mmjax.evaluate.ood import auroc, knn_score, mahalanobis_score, ood_results


def test_auroc_is_sklearns_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(0, 6, 40).astype(float), rng.integers(2, 9, 30).astype(float)  # many ties
        expected = roc_auc_score(np.r_[np.zeros(40), np.ones(30)], np.r_[a, b])
        assert auroc(a, b) == pytest.approx(expected, abs=1e-12)
    assert auroc(np.zeros(3), np.ones(4)) == 1.0 and auroc(np.ones(3), np.ones(4)) == 0.5


@pytest.mark.parametrize("k", [1, 3])
def test_knn_score_is_the_kth_smallest_cosine_distance(k):
    rng = np.random.default_rng(1)
    train, test = rng.normal(size=(50, 8)), rng.normal(size=(20, 8))
    expected = np.sort(cdist(test, train, metric="cosine"), axis=1)[:, k - 1]
    np.testing.assert_allclose(knn_score(train, test, k, chunk=7), expected, atol=1e-12)
    with pytest.raises(ValueError, match="k=51: expected 1..50"):
        knn_score(train, test, 51)


def test_mahalanobis_matches_sklearn_with_one_gaussian_and_a_shared_covariance_per_class():
    rng = np.random.default_rng(2)
    train = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))
    test = rng.normal(size=(30, 5)) * 2
    expected = EmpiricalCovariance().fit(train).mahalanobis(test)  # squared distances
    np.testing.assert_allclose(mahalanobis_score(train, test), expected, rtol=1e-4)
    labels = np.repeat([0, 1], 200)
    shifted = train + labels[:, None] * 10.0
    pooled = np.concatenate([shifted[labels == c] - shifted[labels == c].mean(0) for c in (0, 1)])
    precision = np.linalg.inv(pooled.T @ pooled / len(pooled))
    per_class = [
        np.einsum("md,de,me->m", test - shifted[labels == c].mean(0), precision, test - shifted[labels == c].mean(0))
        for c in (0, 1)
    ]
    np.testing.assert_allclose(mahalanobis_score(shifted, test, labels), np.minimum(*per_class), rtol=1e-4)


def test_rows_separate_a_shifted_set_and_not_a_same_distribution_set():
    rng = np.random.default_rng(3)
    train = (rng.normal(size=(200, 4, 4, 1)), rng.integers(0, 2, 200))
    test, same, shifted = (
        rng.normal(size=(100, 4, 4, 1)),
        rng.normal(size=(100, 4, 4, 1)),
        rng.normal(size=(100, 4, 4, 1)) + 3,
    )

    def flat(images):
        return images.reshape(len(images), -1) + np.r_[5.0, np.zeros(15)]  # off the origin, for the cosine

    rows = ood_results({"pixels": flat}, train, test, {"same": same, "shifted": shifted}, trained="pixels", k=5)
    by = {(r.protocol, r.split): r.value for r in rows}
    assert set(by) == {
        (p, s) for p in ("OOD detection (knn, k=5)", "OOD detection (mahalanobis)") for s in ("same", "shifted")
    }
    for protocol in ("OOD detection (knn, k=5)", "OOD detection (mahalanobis)"):
        assert by[(protocol, "shifted")] > 0.9 and abs(by[(protocol, "same")] - 0.5) < 0.1, by
    assert all(r.metric == "AUROC" and not r.baseline for r in rows)
