"""Bundled time series: statsmodels series cut into windows (pretraining) and UCR sets from sktime (probes).

Nothing is downloaded: statsmodels ships `sunspots`, `co2` and `elnino` (univariate) and
`macrodata` (12 quarterly US macro series); sktime ships `Uschange` (5 quarterly series) and a few
UCR/UEA sets under `sktime/datasets/data/`, among them the multivariate `BasicMotions` (6
channels) and `JapaneseVowels` (12 channels, 7-29 steps), and `ucr_dataset` refuses any other name.

Multivariate windows (`source_windows`): a table source (one long `[T, C]` series, split by time)
gives windows of every start; a panel source (a UEA set of samples with its own train / test
split) gives its samples resampled to the window. Either is cut into groups of `data.variates`
columns (the last group wraps around to the first columns), so every window has the same shape.

Registers the data kind `series`: host batches `{"series": float32 [b, L, V], "domain": int32 [b]}`,
`domain` the index of the window's source in `data.sources` (TimesBERT's domain objective); and
`series_classes`: one bundled UCR / UEA set, `{"series": float32 [b, L, V], "label": int32 [b]}`,
for fine-tuning a series encoder.
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
from mmjax.data.presets import SeriesClassesData, SeriesData, complete_data
from mmjax.data.registry import DataKind, register_data_kind

# Series name -> season length in samples (for the seasonal-naive forecast).
SEASONS = {"sunspots": 11, "co2": 52, "elnino": 12}
# Multivariate table sources -> season length (both quarterly).
TABLE_SEASONS = {"macrodata": 4, "uschange": 4}
# Multivariate panel sources (UEA sets bundled with sktime); no season: seasonal naive = last value.
PANELS = ("BasicMotions", "JapaneseVowels")


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


def bundled_sources() -> list[str]:
    """Every name `data.sources` accepts: univariate series, multivariate tables and panels."""
    return [*SEASONS, *TABLE_SEASONS, *PANELS]


def load_table(name: str) -> np.ndarray:
    """A bundled long series as float64 `[T, C]`: a univariate one (`C = 1`) or a multivariate table.

    `macrodata`: statsmodels' US macro data 1959-2009, 203 quarters x 12 series (year and quarter
    dropped). `uschange`: sktime's quarterly US changes 1970-2016, 187 x 5 (Consumption first).
    """
    if name in SEASONS:
        return load_series(name)[:, None]
    if name == "macrodata":
        import statsmodels.api as sm

        values = sm.datasets.macrodata.load_pandas().data.drop(columns=["year", "quarter"]).to_numpy()
    elif name == "uschange":
        from sktime.datasets import load_uschange

        target, others = load_uschange()
        values = np.column_stack([target.to_numpy(), others.to_numpy()])
    else:
        raise ValueError(f"series source {name!r} is not a bundled table; expected one of {[*SEASONS, *TABLE_SEASONS]}")
    return np.array(values, np.float64)


def load_panel(name: str, split: str, length: int) -> np.ndarray:
    """A bundled multivariate UEA set's `split` samples, each channel resampled to `length`: float32 `[N, length, C]`.

    Reads sktime's nested format, so sets of unequal lengths (`JapaneseVowels`) load too.
    """
    if name not in PANELS:
        raise ValueError(f"series source {name!r} is not a bundled panel; expected one of {list(PANELS)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    from sktime.datasets import load_UCR_UEA_dataset

    nested, _ = load_UCR_UEA_dataset(name, split=split, return_X_y=True, return_type="nested_univ")
    target = np.linspace(0.0, 1.0, length)
    out = np.empty((nested.shape[0], length, nested.shape[1]), np.float32)
    for i in range(nested.shape[0]):
        for c in range(nested.shape[1]):
            values = np.asarray(nested.iloc[i, c], np.float64)
            out[i, :, c] = np.interp(target, np.linspace(0.0, 1.0, len(values)), values)
    return out


def variate_groups(columns: int, variates: int, name: str = "") -> list[np.ndarray]:
    """Column groups of `variates` each covering all `columns`: starts 0, V, 2V, ..., the last wrapping around."""
    if columns < variates:
        raise ValueError(
            f"data.variates={variates}: series source {name!r} has only {columns} variate(s); "
            "expected data.variates <= the variates of every source"
        )
    return [(start + np.arange(variates)) % columns for start in range(0, columns, variates)]


def _window_starts(length: int, window: int, stride: int, name: str, split: str) -> np.ndarray:
    if length < window:
        raise ValueError(f"data.window={window} is longer than the {split} part of {name!r} ({length} steps)")
    return np.arange(0, length - window + 1, stride)


def source_windows(
    names: tuple[str, ...], window: int, variates: int, split: str, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Windows of `variates` variates from each named source, and each window's source index.

    Tables are split by time (`split_series`) and cut at every `stride`; panels use their own split.

    Returns:
      `(windows, domains)`: float32 `[M, window, variates]` and int32 `[M]` (index into `names`).
    """
    windows, domains = [], []
    for domain, name in enumerate(names):
        if name in PANELS:
            samples = load_panel(name, split, window)
        elif name in SEASONS or name in TABLE_SEASONS:
            part = split_series(load_table(name), split, window)
            starts = _window_starts(len(part), window, stride, name, split)
            samples = np.stack([part[s : s + window] for s in starts])
        else:
            raise ValueError(f"series source {name!r} is not bundled; expected one of {bundled_sources()}")
        for group in variate_groups(samples.shape[2], variates, name):
            windows.append(samples[:, :, group])
            domains.append(np.full(len(samples), domain, np.int32))
    return np.concatenate(windows).astype(np.float32), np.concatenate(domains)


def series_windows(names: tuple[str, ...], window: int, split: str, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """All univariate windows of `window` steps (every `stride`) from the `split` part of each named source.

    A multivariate table gives the windows of each of its columns; a panel each channel of each sample
    (season 1: its seasonal naive is the last value).

    Returns:
      `(windows, seasons)`: float32 `[M, window, 1]` and int `[M]` (the season of each window's series).
    """
    windows, seasons = [], []
    for name in names:
        univariate, _ = source_windows((name,), window, 1, split, stride)
        season = SEASONS.get(name, TABLE_SEASONS.get(name, 1))
        windows.append(univariate)
        seasons.append(np.full(len(univariate), season))
    return np.concatenate(windows), np.concatenate(seasons)


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
    """Endless shuffled batches `{"series": float32 [b, L, V], "domain": int32 [b]}` of train-split windows."""
    data_config = complete_data(SeriesData, data_config)
    windows, domains = source_windows(tuple(data_config.sources), data_config.window, data_config.variates, "train")
    records = [{"series": w, "domain": d} for w, d in zip(windows, domains, strict=True)]
    ds = grain.MapDataset.source(records)[process_index::process_count].shuffle(seed=seed).repeat(None)
    return batched_stream(ds, global_batch_size, process_count, data_config)


def series_batch_spec(data_config: Any, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    data_config = complete_data(SeriesData, data_config)
    return {
        "series": jax.ShapeDtypeStruct((batch_size, data_config.window, data_config.variates), jnp.float32),
        "domain": jax.ShapeDtypeStruct((batch_size,), jnp.int32),
    }


SERIES = register_data_kind(DataKind("series", series_train_dataset, series_batch_spec))


def ucr_split(data_config: Any, split: str) -> list[dict[str, np.ndarray]]:
    """The examples of a `series_classes` split: `{"series": float32 [L, V], "label": int32}` each."""
    data_config = complete_data(SeriesClassesData, data_config)
    series, labels = ucr_dataset(data_config.set, split, data_config.window)
    if series.shape[2] != data_config.variates:
        raise ValueError(
            f"data.variates={data_config.variates}: the UCR set {data_config.set!r} has {series.shape[2]} channels"
        )
    return [{"series": x, "label": y} for x, y in zip(series, labels, strict=True)]


def ucr_train_dataset(
    data_config: Any, global_batch_size: int, seed: int, process_index: int, process_count: int
) -> grain.IterDataset:
    """Endless shuffled batches `{"series": float32 [b, L, V], "label": int32 [b]}` of the set's train split."""
    ds = grain.MapDataset.source(ucr_split(data_config, "train"))[process_index::process_count]
    return batched_stream(ds.shuffle(seed=seed).repeat(None), global_batch_size, process_count, data_config)


def ucr_batch_spec(data_config: Any, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    data_config = complete_data(SeriesClassesData, data_config)
    return {
        "series": jax.ShapeDtypeStruct((batch_size, data_config.window, data_config.variates), jnp.float32),
        "label": jax.ShapeDtypeStruct((batch_size,), jnp.int32),
    }


def ucr_eval_dataset(data_config: Any, split: str, batch_size: int) -> grain.MapDataset:
    """All of `split` in order, batched (last batch kept)."""
    return grain.MapDataset.source(ucr_split(data_config, split)).batch(batch_size, drop_remainder=False)


# Labelled series for fine-tuning (a UCR / UEA set); `prepare` is the identity, as for `series`.
SERIES_CLASSES = register_data_kind(
    DataKind("series_classes", ucr_train_dataset, ucr_batch_spec, eval_dataset=ucr_eval_dataset)
)
