"""Out-of-distribution detection from a pretrained image encoder (MOOD's protocol on the bundled data).

The scores (`mmjax.evaluate.ood`: kNN cosine distance, class-conditional Mahalanobis) are
fitted on the features of the run's training split, without its classes `--held-out` (5-9 by
default); the test split's other classes are the in-distribution set. Out of distribution: the
test images of the held-out classes (the hard, near case: same writers, same strokes, other
digits), scikit-learn's 8 x 8 digits resized to the run's image size, random rectangles and
ellipses, and uniform noise. Each row is an AUROC for the trained encoder, the same architecture
at its random initialization, and the raw pixels.

    python benchmarks/ood.py --workdir /tmp/mae_mnist        # a run of experiments/mae_mnist.py
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from mmjax.data import make_source
from mmjax.data.kinds import data_kind
from mmjax.data.presets import digits
from mmjax.data.transforms import resize_center_crop
from mmjax.evaluate.images import random_image_params
from mmjax.evaluate.ood import feature_extractor, ood_results
from mmjax.evaluate.report import results_table
from mmjax.train import load_trained


def split_images(config, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images `[N, H, W, C]` and labels of a split of the run's data, resized for its model."""
    images, labels = [], []
    for batch in data_kind(config.data).eval_batches(config.data, split, 500):
        images.append(np.asarray(batch["image"]))
        labels.append(np.asarray(batch["label"]))
    return np.concatenate(images), np.concatenate(labels)


def outlier_sets(size: tuple[int, int], channels: int, n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    source = make_source(digits(), "test")
    small = [source[i]["image"] for i in range(min(n, len(source)))]
    near = np.stack([resize_center_crop(image, size) for image in small])
    shapes = np.zeros((n, *size, 1), np.uint8)
    yy, xx = np.mgrid[: size[0], : size[1]]
    for image in shapes:
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(0, size[0]), rng.uniform(0, size[1])
            ry, rx = rng.uniform(2, size[0] / 3), rng.uniform(2, size[1] / 3)
            if rng.random() < 0.5:
                inside = (np.abs(yy - cy) < ry) & (np.abs(xx - cx) < rx)
            else:
                inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
            image[inside, 0] = rng.integers(128, 256)
    noise = rng.integers(0, 256, (n, *size, 1), dtype=np.uint8)
    sets = {"digits 8x8, resized": near, "shapes": shapes, "uniform noise": noise}
    return {k: np.repeat(v, channels, -1) if v.shape[-1] != channels else v for k, v in sets.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True, help="a finished image pretraining run")
    parser.add_argument("--k", type=int, default=1, help="the kNN score's neighbour (MOOD: 1)")
    parser.add_argument("--pool", default="mean", choices=("cls", "mean"))
    parser.add_argument("--outliers", type=int, default=297, help="images per synthetic out-of-distribution set")
    parser.add_argument("--held-out", default="5,6,7,8,9", help="classes left out of the fit, scored as outliers")
    args = parser.parse_args()

    began = time.perf_counter()
    config, method, params = load_trained(args.workdir)
    data = config.data
    held_out = [int(c) for c in args.held_out.split(",") if c]
    (train_x, train_y), (test_x, test_y) = split_images(config, "train"), split_images(config, "test")
    known_train, known_test = ~np.isin(train_y, held_out), ~np.isin(test_y, held_out)
    train, test = (train_x[known_train], train_y[known_train]), test_x[known_test]
    outliers = {f"held-out classes {args.held_out}": test_x[~known_test]}
    outliers.update(outlier_sets(tuple(data.image_size), data.channels, args.outliers, config.seed))
    trained = f"{config.method} encoder"
    calls = {
        trained: feature_extractor(method, params, data.mean, data.std, args.pool),
        "random encoder": feature_extractor(
            method, random_image_params(config, method), data.mean, data.std, args.pool
        ),
        "raw pixels": lambda images: images.reshape(len(images), -1).astype(np.float32) / 255.0,
    }
    rows = ood_results(calls, train, test, outliers, trained, k=args.k)
    print(
        f"OOD detection, in distribution: {data.source} ({len(train[0])} fit, {len(test)} held out); "
        f"{args.workdir}, {args.pool} features, {jax.devices()[0].platform}, {time.perf_counter() - began:.0f}s"
    )
    print(results_table(rows))


if __name__ == "__main__":
    main()
