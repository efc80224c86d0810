"""The data-kind linear probe: one compile for all encoders and splits, padding cut, rows of `EvalResult`."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mmjax.evaluate.kind_probe import RAW_INPUT, encoder_probe_table

CLASSES = 4


def labelled_batches(n, batch_size, seed):
    """uint8 4 x 4 images whose class is the row of a bright stripe (plus noise), in batches."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n).astype(np.int32)
    images = rng.integers(0, 60, (n, 4, 4, 1)).astype(np.uint8)
    images[np.arange(n), labels] += 150
    return [{"image": images[i : i + batch_size], "label": labels[i : i + batch_size]} for i in range(0, n, batch_size)]


def test_probe_compiles_the_features_once_and_cuts_the_padding():
    data = ml_collections.ConfigDict({"kind": "images", "mean": (0.5,), "std": (0.5,)})
    splits = {"train": labelled_batches(90, 32, 0), "test": labelled_batches(45, 32, 1)}  # last batches 26 and 13
    traces = []

    def features(params, x):  # row sums: the class shows as the largest one
        traces.append(x.shape)
        return jnp.sum(x[..., 0], axis=2) * params["scale"]

    seen = []

    def eval_batches(split):
        for batch in splits[split]:
            seen.append(split)
            yield batch

    encoders = {"trained": {"scale": np.float32(1.0)}, "other": {"scale": np.float32(-2.0)}}
    results = encoder_probe_table(features, encoders, eval_batches, data, "image", batch_size=32, steps=200, l2=0.0)
    assert traces == [(32, 4, 4, 1)]  # one trace: both encoders, both splits, every batch size
    assert seen == ["train"] * 3 + ["test"] * 2  # each split is read once
    assert list(results) == ["trained", "other", RAW_INPUT]
    assert results["trained"] == results["other"] == pytest.approx(1.0)  # separable by a linear map of the sums
    assert 0.5 < results[RAW_INPUT] <= 1.0


def test_padding_rows_do_not_reach_the_features():
    from mmjax.evaluate.kind_probe import kind_features

    batches = labelled_batches(45, 32, 1)
    fn = lambda params, batch: batch["image"].reshape(len(batch["image"]), -1).astype(np.float32)  # noqa: E731
    feats, labels, seconds = kind_features({"raw": (fn, None)}, batches, 32)
    expected = np.concatenate([b["image"] for b in batches]).reshape(45, -1)
    np.testing.assert_array_equal(feats["raw"], expected)
    np.testing.assert_array_equal(labels, np.concatenate([b["label"] for b in batches]))
    assert set(seconds) == {"raw"} and seconds["raw"] >= 0
