"""Linear probes for encoders of any data kind (video, audio, ...): one accuracy per encoder.

The feature function is compiled once: the encoder's params are an argument (so the trained
and the random encoder share a compilation) and every batch has the same size (the last,
partial one is padded and its padding cut from the features). Each split is read once; every
encoder sees each batch while it is on the host.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import jax
import numpy as np

from mmjax.data.kinds import data_kind
from mmjax.data.pipeline import padded_batches
from mmjax.evaluate.linear_probe import linear_probe
from mmjax.evaluate.report import announce
from mmjax.evaluate.sections import KindProbeSection
from mmjax.methods.protocol import EvalResult

RAW_INPUT = "raw input"
SPLITS = ("train", "test")


def kind_features(
    calls: dict[str, tuple[Callable[[Any, Any], jax.Array], Any]],
    batches: Iterable[dict[str, np.ndarray]],
    batch_size: int,
) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, float]]:
    """Every encoder's features over one pass of `batches`.

    Args:
      calls: name -> `(fn, params)`, `fn` a jitted `(params, host batch without label) -> [b, D]`.
      batches: host batches with a `label` entry, at most `batch_size` rows each.
      batch_size: the one batch size the `fn`s see (shorter batches are padded, then cut).

    Returns:
      (name -> features `[N, D]`, labels `[N]`, name -> seconds spent in its features).
    """
    feats: dict[str, list[np.ndarray]] = {name: [] for name in calls}
    seconds = dict.fromkeys(calls, 0.0)
    labels = []
    for batch, n in padded_batches(batches, batch_size):
        inputs = jax.device_put({k: v for k, v in batch.items() if k != "label"})
        for name, (fn, params) in calls.items():
            began = time.perf_counter()
            feats[name].append(np.asarray(jax.device_get(fn(params, inputs)))[:n])
            seconds[name] += time.perf_counter() - began
        labels.append(np.asarray(batch["label"])[:n])
    return {name: np.concatenate(f) for name, f in feats.items()}, np.concatenate(labels), seconds


def encoder_probe_table(
    features: Callable[[Any, jax.Array], jax.Array],
    encoders: dict[str, Any],
    eval_batches: Callable[[str], Iterable[dict[str, np.ndarray]]],
    data_config: Any,
    input_key: str,
    *,
    batch_size: int,
    steps: int = 500,
    l2: float = 1e-4,
    raw_input: bool = True,
) -> dict[str, float]:
    """Test accuracy of a linear probe on each encoder's features (and on the flattened raw input).

    Args:
      features: `(params, inputs [b, ...]) -> [b, D]`, e.g. `partial(method.features, pool="mean")`.
      encoders: name -> params of the same structure (e.g. the trained and a random encoder).
      eval_batches: split ("train" / "test") -> host batches of at most `batch_size` with a `label` entry.
      data_config: the `data` section; its kind's `prepare` makes the model input `input_key`.
      batch_size: the fixed batch size the features are computed at.
      steps, l2: linear-probe training (`mmjax.evaluate.linear_probe`).
      raw_input: add a row `"raw input"` probing the flattened prepared input.

    Returns:
      name -> test accuracy in [0, 1], in the order of `encoders` (then `"raw input"`).
    """
    prepare = data_kind(data_config).prepare

    @jax.jit
    def encoder_fn(params, batch):
        return features(params, prepare(batch, data_config)[input_key])

    @jax.jit
    def raw_fn(_, batch):
        x = prepare(batch, data_config)[input_key]
        return x.reshape(x.shape[0], -1)

    calls = {name: (encoder_fn, jax.device_put(params)) for name, params in encoders.items()}
    if raw_input:
        calls[RAW_INPUT] = (raw_fn, None)
    announce(f"linear probe: extracting features of {len(calls)} encoders x {len(SPLITS)} splits")
    extracted = {split: kind_features(calls, eval_batches(split), batch_size) for split in SPLITS}
    (train, train_y, train_s), (test, test_y, test_s) = extracted["train"], extracted["test"]
    results = {}
    for name in calls:
        began = time.perf_counter()
        results[name] = linear_probe(train[name], train_y, test[name], test_y, steps=steps, l2=l2)
        fit = time.perf_counter() - began
        announce(f"  {name}: features {train_s[name] + test_s[name]:.1f}s, probe fit {fit:.1f}s")
    return results


def encoder_probe_results(config: Any, method: Any, params: Any, probe: KindProbeSection) -> list[EvalResult]:
    """Linear probe rows: `method`'s encoder (trained), a random encoder and the raw input (baselines).

    `method` provides `name`, `init`, `features(params, inputs, pool)` and `input_key`, as
    `GridMAE` does; the labelled batches come from the data kind (`eval_batches`).
    The random encoder is `method.init` with seed `config.seed + 12345`. Settings:
    `probe` (`eval.kind_probe`: pool, steps, l2, raw_input) and `eval.batch_size`.
    """
    ev = config.eval
    kind = data_kind(config.data)
    example = kind.example_batch(config.data, 1)
    random_params = jax.jit(method.init)(jax.random.key(config.seed + 12345), example)
    trained = f"{method.name} encoder"
    accuracies = encoder_probe_table(
        partial(method.features, pool=probe.pool),
        {trained: params, "random encoder": random_params},
        lambda split: kind.eval_batches(config.data, split, ev.batch_size),
        config.data,
        method.input_key,
        batch_size=ev.batch_size,
        steps=probe.steps,
        l2=probe.l2,
        raw_input=probe.raw_input,
    )
    return [
        EvalResult("linear probe", name, "accuracy", accuracy, baseline=name != trained)
        for name, accuracy in accuracies.items()
    ]


__all__ = ["RAW_INPUT", "encoder_probe_results", "encoder_probe_table", "kind_features"]
