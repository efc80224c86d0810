"""End-of-run evaluation of a pretrained encoder: linear probes and a reconstruction figure."""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from mmjax.data.pipeline import eval_dataset
from mmjax.data.sources import make_source
from mmjax.data.transforms import EvalResize, denormalize_images, normalize_images
from mmjax.evaluate.figures import image_grid, save_png
from mmjax.evaluate.linear_probe import extract_features, linear_probe


def probe_table(config: Any, method: Any, params: Any, random_params: Any) -> dict[str, float]:
    """Probe accuracy on the test split for the trained encoder, a random encoder and raw pixels."""
    data, ev = config.data, config.eval

    def batches(split):
        return eval_dataset(data, split, ev.batch_size)

    def encoder(p):
        @jax.jit
        def features(images):
            return method.features(p, normalize_images(images, data.mean, data.std), pool=ev.probe_pool)

        return features

    def pixels(images):
        return normalize_images(images, data.mean, data.std).reshape(images.shape[0], -1)

    results = {}
    for name, fn in (
        (f"{config.method} encoder", encoder(params)),
        ("random encoder", encoder(random_params)),
        ("raw pixels", pixels),
    ):
        train = extract_features(fn, batches("train"))
        test = extract_features(fn, batches("test"))
        results[name] = linear_probe(*train, *test, steps=ev.probe_steps, l2=ev.probe_l2)
    return results


def reconstruction_figure(config: Any, method: Any, params: Any, path: str) -> str:
    """PNG rows: originals, masked inputs, reconstructions, reconstruction with visible patches pasted."""
    data, n = config.data, config.eval.figure_examples
    source = make_source(data, "test")
    picks = [source[int(i)] for i in np.linspace(0, len(source) - 1, n)]  # spread over the split
    batch = {"image": np.stack([EvalResize(tuple(data.image_size))(p)["image"] for p in picks])}
    images = normalize_images(batch["image"], data.mean, data.std)
    out = method.reconstruct(params, {"image": images}, jax.random.key(config.seed))
    rows = [np.asarray(batch["image"])] + [
        denormalize_images(out[key], data.mean, data.std) for key in ("masked", "prediction", "pasted")
    ]
    scale = max(1, 96 // rows[0].shape[1])
    save_png(path, image_grid(rows, scale=scale))
    return path


def evaluate_pretraining(config: Any, method: Any, params: Any, workdir: str) -> dict[str, Any]:
    """Run the configured evaluations, print the probe table, return the numbers.

    A method with its own `evaluate(config, params, workdir)` (text, tables, generation, ...)
    is evaluated by it instead; this default is the image probe and reconstruction figure.
    """
    if hasattr(method, "evaluate"):
        return method.evaluate(config, params, workdir)
    report: dict[str, Any] = {}
    if config.eval.probe:
        images = np.zeros((1, *config.data.image_size, config.data.channels), np.float32)
        random_params = method.init(jax.random.key(config.seed + 12345), {"image": images})
        report["probe"] = probe_table(config, method, params, random_params)
        print(f"\nlinear probe on {config.data.source} test split ({config.eval.probe_pool} features)")
        print("| features | accuracy |\n| --- | --- |")
        for name, acc in report["probe"].items():
            print(f"| {name} | {100 * acc:.1f}% |")
    if config.eval.figure and jax.process_index() == 0:
        report["figure"] = reconstruction_figure(config, method, params, os.path.join(workdir, "reconstructions.png"))
        print(f"reconstructions: {report['figure']}")
    return report
