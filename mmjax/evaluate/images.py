"""Evaluations of image encoders: a linear probe and a kNN table (the trained encoder against a random
one and raw pixels), and a labelled reconstruction figure.

Batches come from the data kind (`eval_batches`, the `images` kind's `eval_dataset`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from mmjax.data.kinds import data_kind
from mmjax.data.pipeline import padded_batches
from mmjax.data.sources import evaluated_split, make_source
from mmjax.data.transforms import EvalResize, denormalize_images, normalize_images
from mmjax.evaluate.figures import image_grid, save_png
from mmjax.evaluate.kind_probe import kind_features
from mmjax.evaluate.knn import knn_accuracy
from mmjax.evaluate.linear_probe import linear_probe
from mmjax.evaluate.report import announce
from mmjax.evaluate.sections import KnnSection, LowShotSection, ProbeSection
from mmjax.methods.common import input_key
from mmjax.methods.protocol import EvalResult

# Rows of the reconstruction figure: the keys of `method.reconstruct`'s output, in this order.
FIGURE_ROWS = {
    "masked": "masked input",
    "prediction": "prediction",
    "pasted": "prediction, visible pasted",
    "reconstruction": "reconstruction",
}

# The random encoder every probe compares against: `method.init` with this offset to `config.seed`.
RANDOM_SEED_OFFSET = 12345


def image_features(
    config: Any, calls: dict[str, tuple[Callable[[Any, np.ndarray], Any], Any]], split: str
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """`({name: features [N, D]}, labels [N])` of a split, read once, each `fn(params, uint8 images)` compiled once.

    `calls`: name -> `(fn, params)`; every batch goes through all of them before the next is read.
    """
    size = config.eval.batch_size
    feats: dict[str, list[np.ndarray]] = {name: [] for name in calls}
    labels = []
    batches = data_kind(config.data).eval_batches(config.data, split, size)
    for batch, n in padded_batches(batches, size):
        for name, (fn, p) in calls.items():
            feats[name].append(np.asarray(fn(p, batch["image"]))[:n])
        labels.append(np.asarray(batch["label"])[:n])
    return {name: np.concatenate(f) for name, f in feats.items()}, np.concatenate(labels)


def classification_results(config: Any, method: Any, params: Any) -> list[EvalResult]:
    """Top-1 accuracy of `method.logits` on the test split, and the most frequent class's share (baseline).

    Images are read as the probes read them; another kind's batches (`text_classes`) through the kind's
    `eval_batches` and `prepare`, the classifier reading `method.input_key`."""
    data = config.data
    if input_key(method) != "image":
        kind, size = data_kind(data), config.eval.batch_size
        split = "test"

        @jax.jit
        def prepared_logits(p, batch):
            return method.logits(p, kind.prepare(batch, data)[method.input_key])

        announce(f"classification of the test split of data.kind={kind.name!r}")
        calls = {"classifier": (prepared_logits, params)}
        scores, labels, _ = kind_features(calls, kind.eval_batches(data, split, size), size)
    else:

        @jax.jit
        def logits(p, images):
            return method.logits(p, normalize_images(images, data.mean, data.std))

        split = evaluated_split(data)
        announce(f"classification of the {split} split of {data.source}")
        scores, labels = image_features(config, {"classifier": (logits, params)}, "test")
    accuracy = float(np.mean(np.argmax(scores["classifier"], -1) == labels))
    majority = float(np.max(np.bincount(labels.astype(np.int64))) / len(labels))
    return [
        EvalResult("classification", f"{config.method} classifier", "accuracy", accuracy, split=split),
        EvalResult("classification", "most frequent class", "accuracy", majority, baseline=True, split=split),
    ]


def random_image_params(config: Any, method: Any) -> Any:
    """`method.init` at seed `config.seed + RANDOM_SEED_OFFSET`: the random-encoder baseline."""
    images = np.zeros((1, *config.data.image_size, config.data.channels), np.float32)
    return jax.jit(method.init)(jax.random.key(config.seed + RANDOM_SEED_OFFSET), {"image": images})


def _feature_calls(config: Any, method: Any, params: Any, random_params: Any, pool: str) -> tuple[str, dict]:
    data = config.data

    @jax.jit
    def encoder(p, images):
        return method.features(p, normalize_images(images, data.mean, data.std), pool=pool)

    @jax.jit
    def pixels(_, images):
        return normalize_images(images, data.mean, data.std).reshape(images.shape[0], -1)

    trained = f"{config.method} encoder"
    return trained, {
        trained: (encoder, params),
        "random encoder": (encoder, random_params),
        "raw pixels": (pixels, None),
    }


def _score_table(
    config: Any,
    method: Any,
    params: Any,
    random_params: Any,
    protocol: str,
    pool: str,
    detail: str,
    score: Callable,
) -> list[EvalResult]:
    trained, calls = _feature_calls(config, method, params, random_params, pool)
    announce(
        f"{protocol} on {config.data.source} ({pool} features, {detail}): features of {len(calls)} rows x 2 splits"
    )
    began = time.perf_counter()
    (train, train_y), (test, test_y) = image_features(config, calls, "train"), image_features(config, calls, "test")
    announce(f"  features: {time.perf_counter() - began:.1f}s")
    results = []
    for i, name in enumerate(calls, 1):
        began = time.perf_counter()
        accuracy = score(train[name], train_y, test[name], test_y)
        announce(f"  [{i}/{len(calls)}] {name}: {100 * accuracy:.1f}% ({time.perf_counter() - began:.1f}s)")
        results.append(EvalResult(protocol, name, "accuracy", accuracy, name != trained, evaluated_split(config.data)))
    return results


def probe_table(config: Any, method: Any, params: Any, random_params: Any, probe: ProbeSection) -> list[EvalResult]:
    """Linear-probe accuracy (fit on train, scored on test) of the trained encoder, a random one, and raw pixels."""

    def score(train_x, train_y, test_x, test_y):
        return linear_probe(train_x, train_y, test_x, test_y, steps=probe.steps, l2=probe.l2)

    detail = f"{probe.steps} steps"
    return _score_table(config, method, params, random_params, "linear probe", probe.pool, detail, score)


def few_per_class(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `per_class` examples of each class of `labels` `[N]` (all of a class that has fewer)."""
    picks = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(picks))


def lowshot_table(
    config: Any, method: Any, params: Any, random_params: Any, lowshot: LowShotSection
) -> list[EvalResult]:
    """Low-shot linear-probe accuracy: fit on `lowshot.labels_per_class` train examples of each class
    (the mean over `lowshot.draws` draws, seeded by `config.seed`), scored on the whole test split; the
    trained encoder, a random one and raw pixels. Meant for the bench ([evidence]): the full probe of a
    random ViT on the bundled MNIST is already 79% (docs/methods.md), leaving little room to tell encoders apart."""

    def score(train_x, train_y, test_x, test_y):
        rng = np.random.default_rng(config.seed)
        accuracies = []
        for _ in range(lowshot.draws):
            few = few_per_class(train_y, lowshot.labels_per_class, rng)
            accuracies.append(
                linear_probe(train_x[few], train_y[few], test_x, test_y, steps=lowshot.steps, l2=lowshot.l2)
            )
        return float(np.mean(accuracies))

    protocol = f"linear probe, {lowshot.labels_per_class} labels per class"
    detail = f"{lowshot.draws} draws, {lowshot.steps} steps"
    return _score_table(config, method, params, random_params, protocol, lowshot.pool, detail, score)


def knn_table(config: Any, method: Any, params: Any, random_params: Any, knn: KnnSection) -> list[EvalResult]:
    """Weighted kNN accuracy (`knn.k` neighbours, `knn.temperature`): the trained encoder, a random one, raw pixels."""

    def score(train_x, train_y, test_x, test_y):
        return knn_accuracy(train_x, train_y, test_x, test_y, k=min(knn.k, len(train_x)), temperature=knn.temperature)

    return _score_table(config, method, params, random_params, "kNN", knn.pool, f"k={knn.k}", score)


def reconstruction_figure(config: Any, method: Any, params: Any, path: str, examples: int) -> str:
    """PNG with labelled rows: `examples` originals, then each image `method.reconstruct` returns (`FIGURE_ROWS`)."""
    data, n = config.data, examples
    source = make_source(data, "test")
    picks = [source[int(i)] for i in np.linspace(0, len(source) - 1, n)]  # spread over the split
    batch = {"image": np.stack([EvalResize(tuple(data.image_size))(p)["image"] for p in picks])}
    images = normalize_images(batch["image"], data.mean, data.std)
    out = jax.jit(method.reconstruct)(params, {"image": images}, jax.random.key(config.seed))
    keys = [k for k in FIGURE_ROWS if k in out]
    rows = [np.asarray(batch["image"])] + [denormalize_images(out[k], data.mean, data.std) for k in keys]
    labels = ["original"] + [FIGURE_ROWS[k] for k in keys]
    save_png(path, image_grid(rows, scale=max(1, 96 // rows[0].shape[1]), labels=labels))
    return path


__all__ = [
    "FIGURE_ROWS",
    "RANDOM_SEED_OFFSET",
    "image_features",
    "few_per_class",
    "knn_table",
    "lowshot_table",
    "probe_table",
    "random_image_params",
    "reconstruction_figure",
]
