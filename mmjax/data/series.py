"""Bundled time series: statsmodels series cut into windows (pretraining) and UCR sets from sktime (probes).

Nothing is downloaded: statsmodels ships `sunspots`, `co2` and `elnino`; sktime ships a few
UCR/UEA sets under `sktime/datasets/data/` and `ucr_dataset` refuses any other name.
Registers the data kind `series`: host batches `{"series": float32 [b, L, V]}`.
"""

from __future__ import annotations

import os
from typing import Any

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.config import section_config
from mmjax.data.pipeline import batched_stream
from mmjax.data.presets import SeriesData, complete_data
from mmjax.data.registry import DataKind, register_data_kind

# Series name -> season length in samples (for the seasonal-naive forecast).
SEASONS = {"sunspots": 11, "co2": 52, "elnino": 12}


def load_series(name: str) -> np.ndarray:
    """A bundled univariate statsmodels series as float64 `[T]` (gaps linearly interpolated).

    `sunspots`: yearly sunspot numbers 1700-2008 (309). `co2`: weekly Mauna Loa CO2
    1958-2001 (2284, 59 gaps). `elnino`: monthly sea surface temperatures 1950-2010 (732).
    """
    import statsmodels.api as sm

    if name == "sunspots":
        values = sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy()
    elif name == "co2":
        values = sm.datasets.co2.load_pandas().data["co2"].to_numpy()
    elif name == "elnino":
        values = sm.datasets.elnino.load_pandas().data.drop(columns="YEAR").to_numpy().reshape(-1)
    else:
        raise ValueError(f"series name {name!r} is not bundled; expected one of {sorted(SEASONS)}")
    values = np.array(values, np.float64)
    missing = np.isnan(values)
    if missing.any():
        t = np.arange(len(values))
        values[missing] = np.interp(t[missing], t[~missing], values[~missing])
    return values


def split_series(values: np.ndarray, split: str, window: int, test_fraction: float = 0.2) -> np.ndarray:
    """Chronological split: `test` is the last `max(ceil(test_fraction * T), window)` steps, `train` the rest.

    The test part always holds at least one window; the parts never overlap.
    """
    cut = len(values) - max(int(np.ceil(test_fraction * len(values))), window)
    if split == "train":
        return values[:cut]
    if split == "test":
        return values[cut:]
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def series_windows(names: tuple[str, ...], window: int, split: str, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """All windows of `window` steps (every `stride`) from the `split` part of each named series.

    Returns:
      `(windows, seasons)`: float32 `[M, window, 1]` and int `[M]` (the season of each window's series).
    """
    windows, seasons = [], []
    for name in names:
        part = split_series(load_series(name), split, window)
        if len(part) < window:
            raise ValueError(f"data.window={window} is longer than the {split} part of {name!r} ({len(part)} steps)")
        starts = np.arange(0, len(part) - window + 1, stride)
        windows.append(np.stack([part[s : s + window] for s in starts]))
        seasons.append(np.full(len(starts), SEASONS[name]))
    return np.concatenate(windows)[..., None].astype(np.float32), np.concatenate(seasons)


def bundled_ucr_names() -> list[str]:
    """UCR/UEA sets that ship inside sktime (read from local files only)."""
    import sktime

    root = os.path.join(os.path.dirname(sktime.__file__), "datasets", "data")
    return sorted(n for n in os.listdir(root) if os.path.exists(os.path.join(root, n, f"{n}_TRAIN.ts")))


def resample(series: np.ndarray, length: int) -> np.ndarray:
    """Linear resampling of `[N, T, V]` series to `[N, length, V]`."""
    source = np.linspace(0.0, 1.0, series.shape[1])
    target = np.linspace(0.0, 1.0, length)
    out = np.empty((series.shape[0], length, series.shape[2]), np.float32)
    for i in range(series.shape[0]):
        for v in range(series.shape[2]):
            out[i, :, v] = np.interp(target, source, series[i, :, v])
    return out


def ucr_dataset(name: str, split: str, length: int) -> tuple[np.ndarray, np.ndarray]:
    """A bundled UCR/UEA classification set, resampled to `length` steps.

    Returns:
      `(series, labels)`: float32 `[N, length, V]` and int `[N]` (class ids in sorted label order).
    """
    names = bundled_ucr_names()
    if name not in names:
        raise ValueError(f"UCR set {name!r} is not bundled with sktime; bundled sets: {names}")
    from sktime.datasets import load_UCR_UEA_dataset

    x, y = load_UCR_UEA_dataset(name, split=split, return_X_y=True, return_type="numpy3D")
    _, y_train = load_UCR_UEA_dataset(name, split="train", return_X_y=True, return_type="numpy3D")
    classes = sorted(set(y_train.tolist()))
    labels = np.array([classes.index(v) for v in y.tolist()], np.int32)
    return resample(np.transpose(np.asarray(x, np.float64), (0, 2, 1)), length), labels


def series_config(
    sources: tuple[str, ...] = ("sunspots", "co2", "elnino"),
    window: int = 96,
    probe_sets: tuple[str, ...] = ("GunPoint", "ItalyPowerDemand", "ArrowHead"),
) -> ml_collections.ConfigDict:
    """The `data` section of the `series` kind."""
    return section_config(SeriesData, sources=tuple(sources), window=window, variates=1, probe_sets=tuple(probe_sets))


def series_train_dataset(
    data_config: Any, global_batch_size: int, seed: int, process_index: int, process_count: int
) -> grain.IterDataset:
    """Endless shuffled batches `{"series": float32 [b, L, 1]}` of train-split windows."""
    data_config = complete_data(SeriesData, data_config)
    windows, _ = series_windows(tuple(data_config.sources), data_config.window, "train")
    records = [{"series": w} for w in windows]
    ds = grain.MapDataset.source(records)[process_index::process_count].shuffle(seed=seed).repeat(None)
    return batched_stream(ds, global_batch_size, process_count, data_config)


def series_batch_spec(data_config: Any, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    data_config = complete_data(SeriesData, data_config)
    return {"series": jax.ShapeDtypeStruct((batch_size, data_config.window, data_config.variates), jnp.float32)}


SERIES = register_data_kind(DataKind("series", series_train_dataset, series_batch_spec))
