"""Generation metrics: the Frechet distance between feature sets (FID's formula) and conditioning accuracy."""

from __future__ import annotations

import numpy as np


def frechet_distance(real: np.ndarray, generated: np.ndarray) -> float:
    """`|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))` of Gaussians fitted to two feature sets.

    FID (Heusel et al. 2017) is this on Inception pool features; any feature space works.

    Args:
      real: `[N, D]` features.
      generated: `[M, D]` features.

    Returns:
      The distance (>= 0; 0 for identical statistics).
    """
    from scipy import linalg

    real, generated = np.asarray(real, np.float64), np.asarray(generated, np.float64)
    if real.ndim != 2 or generated.ndim != 2 or real.shape[1] != generated.shape[1]:
        raise ValueError(f"features must be [N, D] and [M, D] with the same D; got {real.shape}, {generated.shape}")
    if min(len(real), len(generated)) < 2:
        raise ValueError(f"need at least 2 rows per set for a covariance; got {len(real)}, {len(generated)}")
    mu_r, mu_g = real.mean(0), generated.mean(0)
    cov_r, cov_g = np.cov(real, rowvar=False), np.cov(generated, rowvar=False)
    covmean = linalg.sqrtm(cov_r @ cov_g)
    if not np.all(np.isfinite(covmean)):  # a singular product: regularize as in the FID reference
        offset = np.eye(cov_r.shape[0]) * 1e-6
        covmean = linalg.sqrtm((cov_r + offset) @ (cov_g + offset))
    covmean = np.real(covmean)
    diff = mu_r - mu_g
    return float(max(0.0, diff @ diff + np.trace(cov_r) + np.trace(cov_g) - 2.0 * np.trace(covmean)))


def conditioning_accuracy(predicted: np.ndarray, requested: np.ndarray) -> float:
    """Fraction of samples a classifier labels as the class they were generated for."""
    predicted, requested = np.asarray(predicted), np.asarray(requested)
    if predicted.shape != requested.shape:
        raise ValueError(f"predicted {predicted.shape} and requested {requested.shape} labels differ in shape")
    return float(np.mean(predicted == requested))
