"""Out-of-distribution scores from an encoder's features (MOOD, Li et al. 2023), and their AUROC.

A score is higher for inputs less like the in-distribution training features:

- `knn_score`: the cosine distance from each L2-normalized feature to its k-th nearest training
  feature (Sun et al. 2022, the "deep nearest neighbors" score MOOD reports with k=1).
- `mahalanobis_score`: the Mahalanobis distance under Gaussians fitted to the training features,
  one per class with a shared covariance (Lee et al. 2018) when labels are given, else one
  Gaussian; the minimum over classes. The covariance gets a small ridge so it inverts.
- `auroc`: the probability that an out-of-distribution input scores above an in-distribution
  one (ties count half): 1 separates them perfectly, 0.5 is chance.

Numbers in float64 on the host (numpy); features come from `method.features` as for the probes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from mmjax.data.pipeline import padded_batches
from mmjax.data.transforms import normalize_images
from mmjax.methods.protocol import EvalResult

RIDGE = 1e-8  # relative to the covariance's mean variance


def knn_score(train: np.ndarray, test: np.ndarray, k: int = 1, chunk: int = 1024) -> np.ndarray:
    """Cosine distance `[M]` from each row of `test` `[M, D]` to its `k`-th nearest row of `train` `[N, D]`."""
    if not 1 <= k <= len(train):
        raise ValueError(f"k={k}: expected 1..{len(train)} (the number of training features)")

    def unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    train, test = unit(train), unit(test)
    out = np.empty(len(test))
    for start in range(0, len(test), chunk):
        similarity = test[start : start + chunk] @ train.T
        out[start : start + chunk] = 1.0 - np.sort(similarity, axis=1)[:, -k]
    return out


def mahalanobis_score(train: np.ndarray, test: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Squared Mahalanobis distance `[M]` of `test` rows to the nearest class mean of `train` (shared covariance)."""
    train, test = np.asarray(train, np.float64), np.asarray(test, np.float64)
    groups = np.zeros(len(train), np.int64) if labels is None else np.asarray(labels)
    classes = np.unique(groups)
    means = np.stack([train[groups == c].mean(0) for c in classes])
    centered = train - means[np.searchsorted(classes, groups)]
    covariance = centered.T @ centered / len(train)
    covariance += RIDGE * max(np.trace(covariance) / len(covariance), 1e-12) * np.eye(len(covariance))
    precision = np.linalg.inv(covariance)
    diff = test[:, None, :] - means[None]  # [M, C, D]
    return np.min(np.einsum("mcd,de,mce->mc", diff, precision, diff), axis=1)


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """P(out score > in score) + P(equal) / 2: the area under the ROC curve with OOD as the positive class."""
    scores = np.concatenate([in_scores, out_scores])
    ranks = _average_ranks(scores)
    n_in, n_out = len(in_scores), len(out_scores)
    return float((ranks[n_in:].sum() - n_out * (n_out + 1) / 2) / (n_in * n_out))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (the Mann-Whitney U statistic's)."""
    _, group, counts = np.unique(values, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # a tie group holds ranks last - count + 1 .. last
    return ((last - counts + 1 + last) / 2)[group]


def ood_results(
    calls: dict[str, Callable[[np.ndarray], np.ndarray]],
    train: tuple[np.ndarray, np.ndarray],
    test: np.ndarray,
    outliers: dict[str, np.ndarray],
    trained: str,
    k: int = 1,
) -> list[EvalResult]:
    """AUROC rows: for each feature extractor of `calls` (name -> `uint8 images [B, H, W, C] -> [B, D]`),
    each score, and each out-of-distribution set, with `test` (held-out in-distribution images) as the
    negatives. `train` is `(images, labels)`, what the scores are fitted on; `trained` names the row that
    is not a baseline."""
    rows = []
    for name, extract in calls.items():
        fit, held_out = extract(train[0]), extract(test)
        fit_scores = {
            "knn": lambda x, fit=fit: knn_score(fit, x, k),
            "mahalanobis": lambda x, fit=fit: mahalanobis_score(fit, x, train[1]),
        }
        for score_name, score in fit_scores.items():
            negatives = score(held_out)
            for ood_name, images in outliers.items():
                value = auroc(negatives, score(extract(images)))
                protocol = f"OOD detection ({score_name}{f', k={k}' if score_name == 'knn' else ''})"
                rows.append(EvalResult(protocol, name, "AUROC", value, baseline=name != trained, split=ood_name))
    return rows


def feature_extractor(method: Any, params: Any, mean: Any, std: Any, pool: str, batch: int = 256) -> Callable:
    """`uint8 images [B, H, W, C] -> float32 features [B, D]` of `method.features`, jitted, in batches."""

    @jax.jit
    def run(images):
        return method.features(params, normalize_images(images, mean, std), pool=pool)

    def extract(images: np.ndarray) -> np.ndarray:
        chunks = ({"image": images[i : i + batch]} for i in range(0, len(images), batch))
        return np.concatenate([np.asarray(run(b["image"]))[:n] for b, n in padded_batches(chunks, batch)])

    return extract


__all__ = ["auroc", "feature_extractor", "knn_score", "mahalanobis_score", "ood_results"]
