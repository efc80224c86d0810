"""Linear probes for encoders of any data kind: features of prepared batches, one accuracy per encoder."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import jax
import numpy as np

from mmjax.data.kinds import data_kind
from mmjax.evaluate.linear_probe import linear_probe

RAW_INPUT = "raw input"


def kind_features(
    feature_fn: Callable[[jax.Array], jax.Array],
    batches: Iterable[dict[str, np.ndarray]],
    data_config: Any,
    input_key: str,
) -> tuple[np.ndarray, np.ndarray]:
    """`feature_fn` (model input `[b, ...]` -> `[b, D]`) over host batches prepared by `data.kind`.

    Returns (features `[N, D]`, labels `[N]`).
    """
    prepare = data_kind(data_config).prepare

    @jax.jit
    def features(batch):
        return feature_fn(prepare(batch, data_config)[input_key])

    feats, labels = [], []
    for batch in batches:
        inputs = {k: v for k, v in batch.items() if k != "label"}
        feats.append(np.asarray(jax.device_get(features(jax.device_put(inputs)))))
        labels.append(np.asarray(batch["label"]))
    return np.concatenate(feats), np.concatenate(labels)


def encoder_probe_table(
    features: Callable[[Any, jax.Array], jax.Array],
    encoders: dict[str, Any],
    eval_batches: Callable[[str], Iterable[dict[str, np.ndarray]]],
    data_config: Any,
    input_key: str,
    *,
    steps: int = 500,
    l2: float = 1e-4,
    raw_input: bool = True,
) -> dict[str, float]:
    """Test accuracy of a linear probe on each encoder's features (and on the flattened raw input).

    Args:
      features: `(params, inputs [b, ...]) -> [b, D]`, e.g. `partial(method.features, pool="mean")`.
      encoders: name -> params (e.g. the trained and a random encoder).
      eval_batches: split ("train" / "test") -> host batches with a `label` entry.
      data_config: the `data` section; its kind's `prepare` makes the model input `input_key`.
      steps, l2: linear-probe training (`mmjax.evaluate.linear_probe`).
      raw_input: add a row `"raw input"` probing the flattened prepared input.
    """
    fns = {name: (lambda x, p=params: features(p, x)) for name, params in encoders.items()}
    if raw_input:
        fns[RAW_INPUT] = lambda x: x.reshape(x.shape[0], -1)
    splits = {split: list(eval_batches(split)) for split in ("train", "test")}  # read (or synthesize) once
    results = {}
    for name, fn in fns.items():
        train = kind_features(fn, splits["train"], data_config, input_key)
        test = kind_features(fn, splits["test"], data_config, input_key)
        results[name] = linear_probe(*train, *test, steps=steps, l2=l2)
    return results


def print_probe_table(title: str, results: dict[str, float]) -> None:
    """Print `{features name: accuracy}` as a markdown table under `title`."""
    print(f"\n{title}\n| features | accuracy |\n| --- | --- |")
    for name, acc in results.items():
        print(f"| {name} | {100 * acc:.1f}% |")
