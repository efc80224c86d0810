"""Generation metrics and the class-conditional sample evaluation of MaskGIT-style generators.

`frechet_distance` is FID's formula on any feature set; `conditioning_accuracy` is the share of
samples classified as the class they were asked for. `PixelClassifier` supplies both for small
images: a scikit-learn MLP (one hidden layer of 64 units) trained on the run's real train images
labels the samples, and its hidden activations are the feature space of the Frechet distance
(to the real train images). `class_conditional_results` is the end-of-run evaluation: it
generates images of every class, writes `samples.png`, and scores the samples against two
references, the real test images (what the classifier reaches on real data) and the
tokenizer's reconstructions of them (the best a generator of these codes can do).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
import warnings
from typing import Any

import jax
import numpy as np

from mmjax.data.pipeline import eval_dataset, padded_batches
from mmjax.data.sources import evaluated_split
from mmjax.data.transforms import denormalize_images, normalize_images
from mmjax.evaluate.figures import image_grid, save_png
from mmjax.evaluate.report import announce
from mmjax.methods.protocol import EvalResult

PROTOCOL = "class-conditional samples"
ACCURACY = "class accuracy"
FRECHET = "Frechet distance"
INSTALL_HINT = "pip install 'mmjax[data]'"


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
    with warnings.catch_warnings():  # singular products (e.g. features that are always 0) are expected
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov_r @ cov_g)
        if not np.all(np.isfinite(covmean)):  # regularize as in the FID reference
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


# --- A judge for small images -----------------------------------------------------------


_FITTED: dict[tuple[str, int], PixelClassifier] = {}


def split_images(data_config: Any, split: str, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """All of an image split, resized as for evaluation: (uint8 `[N, H, W, C]`, int labels `[N]`)."""
    batches = list(eval_dataset(data_config, split, batch_size))
    return np.concatenate([b["image"] for b in batches]), np.concatenate([b["label"] for b in batches])


def _pixels(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, np.float64).reshape(len(images), -1) / 255.0


def _hidden(model: Any, images: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, _pixels(images) @ model.coefs_[0] + model.intercepts_[0])


@dataclasses.dataclass(frozen=True)
class PixelClassifier:
    """An MLP on raw pixels (64 ReLU units) and the hidden features of the real images it was fit on.

    Built by `fit`. It is a measure for small images (digits): its input is every pixel.
    """

    model: Any  # sklearn.neural_network.MLPClassifier
    reference: np.ndarray  # `[N, 64]` hidden features of the training images

    @classmethod
    def fit(cls, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> PixelClassifier:
        """Train on uint8 images `[N, H, W, C]` with int labels `[N]` (Adam, at most 600 epochs).

        Raises:
          ImportError: scikit-learn is missing (it comes with the `data` extra).
        """
        try:
            from sklearn.neural_network import MLPClassifier
            from threadpoolctl import threadpool_limits
        except ImportError as e:
            raise ImportError(f"the sample classifier needs scikit-learn: {INSTALL_HINT}") from e
        model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=600, random_state=seed)
        with threadpool_limits(1):  # tiny matrices: one BLAS thread beats several competing with XLA's
            model.fit(_pixels(images), np.asarray(labels))
        return cls(model, _hidden(model, images))

    @classmethod
    def fitted(cls, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> PixelClassifier:
        """`fit`, once per process for the same images, labels and seed (an evaluation every
        `eval.every_steps`, `mmjax eval` of several checkpoints and several generators share it)."""
        key = (hashlib.sha256(np.ascontiguousarray(images).tobytes() + np.asarray(labels).tobytes()).hexdigest(), seed)
        if key not in _FITTED:
            _FITTED.clear()  # one data set at a time: a classifier is a few hundred KB
            _FITTED[key] = cls.fit(images, labels, seed)
        return _FITTED[key]

    def features(self, images: np.ndarray) -> np.ndarray:
        """ReLU activations of the hidden layer: uint8 `[N, H, W, C]` -> `[N, 64]`."""
        return _hidden(self.model, images)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Class labels `[N]` of uint8 images `[N, H, W, C]`."""
        return self.model.predict(_pixels(images))

    def judge(self, images: np.ndarray, requested: np.ndarray) -> dict[str, float]:
        """`{"class accuracy": share labelled as `requested`, "Frechet distance": to the training images}`."""
        return {
            ACCURACY: conditioning_accuracy(self.predict(images), requested),
            FRECHET: frechet_distance(self.reference, self.features(images)),
        }


# --- Images from a generator and its tokenizer ----------------------------------------------


def _chunks(array: np.ndarray, size: int) -> list[dict[str, np.ndarray]]:
    return [{"x": array[i : i + size]} for i in range(0, len(array), size)]


def generate_images(
    method: Any,
    params: Any,
    labels: np.ndarray,
    rng: jax.Array,
    data_config: Any,
    batch_size: int,
    sampler: Any = None,
) -> np.ndarray:
    """uint8 images `[N, H, W, C]` of classes `labels` `[N]`, generated `batch_size` at a time (one compile).

    Args:
      method: a generator with `sampler()` and `decode_images(params, codes)` (normalized images).
      params: its params (host or device).
      labels: int `[N]`; batch i is drawn with `fold_in(rng, i)`.
      data_config: the `data` section (`mean`, `std` to denormalize).
      batch_size: the one batch shape (the last batch is padded, its padding dropped).
      sampler: a `method.sampler(...)` to use (default: the config's `sample` settings).
    """
    sampler = method.sampler() if sampler is None else sampler
    images_of = jax.jit(lambda p, key, y: method.decode_images(p, sampler(p, key, y)))
    params = jax.device_put(params)
    out = []
    for i, (batch, n) in enumerate(padded_batches(_chunks(np.asarray(labels, np.int32), batch_size), batch_size)):
        images = jax.device_get(images_of(params, jax.random.fold_in(rng, i), batch["x"]))
        out.append(denormalize_images(images, data_config.mean, data_config.std)[:n])
    return np.concatenate(out)


def reconstruct_images(method: Any, params: Any, images: np.ndarray, data_config: Any, batch_size: int) -> np.ndarray:
    """uint8 `[N, H, W, C]`: uint8 `images` through the generator's tokenizer (to codes and back)."""
    mean, std = data_config.mean, data_config.std

    @jax.jit
    def round_trip(p, x):
        codes = method.tokenizer.tokenize(p["tokenizer"], normalize_images(x, mean, std))
        return method.decode_images(p, codes)

    params = jax.device_put(params)
    out = []
    for batch, n in padded_batches(_chunks(np.asarray(images), batch_size), batch_size):
        out.append(denormalize_images(jax.device_get(round_trip(params, batch["x"])), mean, std)[:n])
    return np.concatenate(out)


# --- The end-of-run evaluation --------------------------------------------------------------


def class_conditional_results(config: Any, method: Any, params: Any, workdir: str) -> list[EvalResult]:
    """Generate every class, write `samples.png` (process 0), score the samples against real images.

    `samples.png` has a row per class of `sample.per_class` samples. With
    `sample.metrics_per_class` > 0, that many samples per class are scored by a
    `PixelClassifier` fit on the train split: rows `class accuracy` and `Frechet distance` for
    the samples (`<method> samples`) and, as baselines, for the real test images and the
    tokenizer's reconstructions of them. Generation and reconstruction run `eval.batch_size`
    at a time.

    Args:
      method: a class-conditional generator with `options.num_classes`, `sample_options`,
        `sampler`, `decode_images` and a `tokenizer` (MaskGIT).
    """
    data, batch_size = config.data, config.eval.batch_size
    classes, options = method.options.num_classes, method.sample_options
    per_class = max(options.per_class, options.metrics_per_class)
    if per_class == 0:
        return []
    announce(f"{PROTOCOL}: generating {classes} classes x {per_class} ({options.steps} decoding steps)")
    began = time.perf_counter()
    labels = np.repeat(np.arange(classes, dtype=np.int32), per_class)
    samples = generate_images(method, params, labels, jax.random.key(config.seed), data, batch_size)
    by_class = samples.reshape(classes, per_class, *samples.shape[1:])
    announce(f"  {len(samples)} samples in {time.perf_counter() - began:.1f}s")
    if options.per_class:
        path = os.path.join(workdir, "samples.png")
        if jax.process_index() == 0:
            rows, names = list(by_class[:, : options.per_class]), [f"class {c}" for c in range(classes)]
            save_png(path, image_grid(rows, scale=max(1, 64 // samples.shape[1]), labels=names))
        announce(f"  samples: {path}")
    if not options.metrics_per_class:
        return []

    began = time.perf_counter()
    train_images, train_labels = split_images(data, "train", batch_size)
    test_images, test_labels = split_images(data, "test", batch_size)
    announce(f"  fitting the pixel classifier on {len(train_images)} train images")
    classifier = PixelClassifier.fitted(train_images, train_labels, seed=config.seed)
    reconstructions = reconstruct_images(method, params, test_images, data, batch_size)
    scored = by_class[:, : options.metrics_per_class].reshape(-1, *samples.shape[1:])
    requested = np.repeat(np.arange(classes), options.metrics_per_class)
    rows = (
        (f"{config.method} samples", scored, requested, False),
        ("real test images", test_images, test_labels, True),
        ("tokenizer reconstructions", reconstructions, test_labels, True),
    )
    split = evaluated_split(data)
    results = [
        EvalResult(PROTOCOL, name, metric, value, baseline=baseline, split=split)
        for name, images, labels_of, baseline in rows
        for metric, value in classifier.judge(images, labels_of).items()
    ]
    announce(f"  scored in {time.perf_counter() - began:.1f}s")
    return results


__all__ = [
    "PixelClassifier",
    "class_conditional_results",
    "conditioning_accuracy",
    "frechet_distance",
    "generate_images",
    "reconstruct_images",
    "split_images",
]
