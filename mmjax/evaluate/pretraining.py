"""End-of-run evaluation of a trained method: run it, print one table, save `eval.json` / `eval.md`.

`evaluate_pretraining` is what `python -m mmjax train` (after training) and `python -m mmjax
eval` call. A method with its own `evaluate` hook (text, tables, series, points, video, audio,
generation) is evaluated by it; images get the default here: a linear probe of the encoder
against a random encoder and raw pixels, a labelled reconstruction figure, and for a
tokenizer its reconstruction error and code statistics.

Parameters sharded across processes are first gathered to every host (a collective), then
every process evaluates on its own devices: the numbers are the same everywhere and only
process 0 prints and writes, so no process waits on another while it evaluates.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from mmjax.data.pipeline import eval_dataset, padded_batches
from mmjax.data.sources import make_source
from mmjax.data.transforms import EvalResize, denormalize_images, normalize_images
from mmjax.evaluate.figures import image_grid, save_png
from mmjax.evaluate.linear_probe import linear_probe
from mmjax.evaluate.report import announce, results_table, write_report
from mmjax.evaluate.tokenizers import tokenizer_results
from mmjax.methods.protocol import EvalResult

# Rows of the reconstruction figure: the keys of `method.reconstruct`'s output, in this order.
FIGURE_ROWS = {
    "masked": "masked input",
    "prediction": "prediction",
    "pasted": "prediction, visible pasted",
    "reconstruction": "reconstruction",
}


def host_params(params: Any) -> Any:
    """`params` as host numpy arrays on every process (an all-gather when they span processes)."""
    if all(getattr(x, "is_fully_addressable", True) for x in jax.tree.leaves(params)):
        return jax.device_get(params)
    from jax.experimental import multihost_utils  # noqa: PLC0415

    return multihost_utils.process_allgather(params, tiled=True)


def image_features(
    config: Any, calls: dict[str, tuple[Callable[[Any, np.ndarray], Any], Any]], split: str
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """`({name: features [N, D]}, labels [N])` of a split, read once, each `fn(params, uint8 images)` compiled once.

    `calls`: name -> `(fn, params)`; every batch goes through all of them before the next is read.
    """
    size = config.eval.batch_size
    feats: dict[str, list[np.ndarray]] = {name: [] for name in calls}
    labels = []
    for batch, n in padded_batches(eval_dataset(config.data, split, size), size):
        for name, (fn, p) in calls.items():
            feats[name].append(np.asarray(fn(p, batch["image"]))[:n])
        labels.append(np.asarray(batch["label"])[:n])
    return {name: np.concatenate(f) for name, f in feats.items()}, np.concatenate(labels)


def probe_table(config: Any, method: Any, params: Any, random_params: Any) -> list[EvalResult]:
    """Linear-probe accuracy (fit on train, scored on test) of the trained encoder, a random one, and raw pixels."""
    data, ev = config.data, config.eval

    @jax.jit
    def encoder(p, images):
        return method.features(p, normalize_images(images, data.mean, data.std), pool=ev.probe_pool)

    @jax.jit
    def pixels(_, images):
        return normalize_images(images, data.mean, data.std).reshape(images.shape[0], -1)

    trained = f"{config.method} encoder"
    calls = {trained: (encoder, params), "random encoder": (encoder, random_params), "raw pixels": (pixels, None)}
    announce(
        f"linear probe on {data.source} ({ev.probe_pool} features, {ev.probe_steps} steps): features of "
        f"{len(calls)} rows x 2 splits"
    )
    began = time.perf_counter()
    (train, train_y), (test, test_y) = image_features(config, calls, "train"), image_features(config, calls, "test")
    announce(f"  features: {time.perf_counter() - began:.1f}s")
    results = []
    for i, name in enumerate(calls, 1):
        began = time.perf_counter()
        accuracy = linear_probe(train[name], train_y, test[name], test_y, steps=ev.probe_steps, l2=ev.probe_l2)
        announce(f"  [{i}/{len(calls)}] {name}: {100 * accuracy:.1f}% ({time.perf_counter() - began:.1f}s)")
        results.append(EvalResult("linear probe", name, "accuracy", accuracy, name != trained))
    return results


def reconstruction_figure(config: Any, method: Any, params: Any, path: str) -> str:
    """PNG with labelled rows: the originals, then each image `method.reconstruct` returns (`FIGURE_ROWS`)."""
    data, n = config.data, config.eval.figure_examples
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


def image_evaluation(config: Any, method: Any, params: Any, workdir: str) -> tuple[list[EvalResult], dict[str, str]]:
    """The default for image methods: probe, tokenizer statistics (tokenizers), figure."""
    results: list[EvalResult] = []
    files: dict[str, str] = {}
    if config.eval.probe:
        images = np.zeros((1, *config.data.image_size, config.data.channels), np.float32)
        random_params = jax.jit(method.init)(jax.random.key(config.seed + 12345), {"image": images})
        results += probe_table(config, method, params, random_params)
    if hasattr(method, "tokenize"):
        announce("tokenizer reconstruction of the test split")
        results += tokenizer_results(config, method, params)
    if config.eval.figure and hasattr(method, "reconstruct"):
        path = os.path.join(workdir, "reconstructions.png")
        if jax.process_index() == 0:
            reconstruction_figure(config, method, params, path)
        files["figure"] = path
    return results, files


def evaluate_pretraining(
    config: Any, method: Any, params: Any, workdir: str, *, step: int | None = None
) -> list[EvalResult]:
    """Run the configured evaluation, print its table, write `eval.json` / `eval.md` (process 0).

    Args:
      config, method, params: a trained run (`params` may be sharded, even across processes).
      workdir: where the results and figures go.
      step: the checkpoint step evaluated (recorded in `eval.json`).

    Returns the rows (`EvalResult`); with nothing evaluated (every evaluation switched off), no file
    is written. Every process must call it (the parameters are gathered).
    """
    params = host_params(params)
    began = time.perf_counter()
    announce(f"\nevaluating {config.method} (step {step}) ...")
    files: dict[str, str] = {}
    if hasattr(method, "evaluate"):
        results = list(method.evaluate(config, params, workdir))
    else:
        results, files = image_evaluation(config, method, params, workdir)
    source = config.data.get("source", config.data.get("kind", "data"))
    if not results and not files:  # e.g. eval.probe=False and eval.figure=False: no empty report either
        announce("nothing to evaluate (every evaluation of this method is switched off in eval.*)")
        return results
    if jax.process_index() == 0:
        if results:
            print(f"\n{config.method} on {source}, step {step}\n{results_table(results)}", flush=True)
        for name, path in files.items():
            print(f"{name}: {path}", flush=True)
        write_report(
            workdir,
            step=-1 if step is None else step,
            method=config.method,
            data=str(source),
            results=results,
            files=files,
        )
        print(f"results: {os.path.join(workdir, 'eval.json')} ({time.perf_counter() - began:.0f}s)", flush=True)
    return results
