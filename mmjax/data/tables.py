"""Numeric tables with missing cells, for ReMasker through `python -m mmjax train`.

A table comes from the bundled real tables (`BUNDLED_TABLES`, complete, in their source's
units; cells are removed completely at random and the removed truth scores the imputation)
or from a user's `.csv` / `.npy` file whose empty / NaN cells are the missing ones.

Bundled tables, rows x columns, from installed packages (no network):

- scikit-learn: `breast_cancer` 569 x 30, `wine` 178 x 13, `diabetes` 442 x 10, and
  `digits` 1797 x 61 (the 8 x 8 images' pixels; the 3 pixels that are 0 in every image,
  `pixel_0_0`, `pixel_4_0`, `pixel_4_7`, are dropped).
- statsmodels: `fertility` 192 x 52 (World Bank births per woman, one row per country or
  region, one column per year 1960-2011; the empty years 2012-2013, the name / code columns
  and the 27 rows with a gap are dropped), `star98` 303 x 22 (California school districts'
  test results and their covariates, with statsmodels' interaction columns), `macrodata`
  203 x 12 (US quarterly macro series; `year` and `quarter` are dropped).

The model sees each column standardized with its observed mean and std; imputed tables go
back to the source's units.

Registers the data kind `tables`: host batches `{"values": float32 [b, D]` (0 at missing
cells), `"observed": bool [b, D]}`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.config import section_config
from mmjax.data.pipeline import batched_stream, per_process_batch_size
from mmjax.data.presets import TablesData, complete_data
from mmjax.data.registry import DataKind, register_data_kind

SKLEARN_TABLES = ("breast_cancer", "wine", "diabetes", "digits")
STATSMODELS_TABLES = ("fertility", "star98", "macrodata")
BUNDLED_TABLES = SKLEARN_TABLES + STATSMODELS_TABLES


def _sklearn_table(name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    data = bunch.data.astype(np.float64)
    columns = tuple(str(c) for c in bunch.feature_names)
    varies = data.std(0) > 0  # digits' always-blank pixels carry nothing to impute or score
    return data[:, varies], tuple(c for c, keep in zip(columns, varies, strict=True) if keep)


def _statsmodels_table(name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    try:
        from statsmodels import datasets
    except ImportError as error:
        raise ImportError(f"data.source={name!r} is a statsmodels table; install statsmodels") from error
    frame = getattr(datasets, name).load_pandas().data
    if name == "fertility":
        frame = frame.select_dtypes("number").dropna(axis=1, how="all").dropna(axis=0)
    elif name == "macrodata":
        frame = frame.drop(columns=["year", "quarter"])
    return frame.to_numpy(np.float64), tuple(str(c) for c in frame.columns)


def bundled_table(name: str, standardized: bool = True) -> tuple[np.ndarray, tuple[str, ...]]:
    """A complete bundled table (`BUNDLED_TABLES`), float64 `[N, D]`, and its column names.

    `standardized`: each column at mean 0 and std 1 (its complete-data statistics, the units of
    `benchmarks/imputation.py`); False keeps the source's raw values.
    """
    if name in SKLEARN_TABLES:
        data, columns = _sklearn_table(name)
    elif name in STATSMODELS_TABLES:
        data, columns = _statsmodels_table(name)
    else:
        raise ValueError(f"data.source={name!r} is not a bundled table; bundled: {BUNDLED_TABLES} or a .csv/.npy path")
    if standardized:
        data = (data - data.mean(0)) / data.std(0)
    return data, columns


def remove_cells(table: np.ndarray, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MCAR: each cell removed with probability `rate`; a column keeps at least one cell.

    Returns `(masked, removed)`: a copy of `table` with NaN at removed cells, and bool `[N, D]`.
    """
    rng = np.random.default_rng(seed)
    removed = rng.random(table.shape) < rate
    for col in np.flatnonzero(removed.all(0)):
        removed[rng.integers(table.shape[0]), col] = False
    masked = table.copy()
    masked[removed] = np.nan
    return masked, removed


def read_table_file(path: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """float64 `[N, D]` from a `.npy` array or a `.csv` with a header row (empty cells = NaN), and column names."""
    if path.endswith(".npy"):
        table = np.load(path).astype(np.float64)
        columns = tuple(f"column_{i}" for i in range(table.shape[-1]))
    elif path.endswith(".csv"):
        import pandas as pd

        frame = pd.read_csv(path, float_precision="round_trip")  # each cell exactly as written
        bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        if bad:
            raise ValueError(f"{path}: columns {bad} are not numeric; the tables data kind reads numeric columns only")
        table = frame.to_numpy(np.float64)
        columns = tuple(str(c) for c in frame.columns)
    else:
        raise ValueError(f"data.source={path!r}: expected a bundled table {BUNDLED_TABLES}, a .csv or a .npy file")
    if table.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D table [rows, columns], got shape {table.shape}")
    return table, columns


@dataclasses.dataclass(frozen=True)
class MaskedTable:
    """A standardized table with its missing cells.

    `raw` float64 `[N, D]` is the table in the source's units (the user's file, or the
    bundled table's source values), NaN at missing cells; `values` float32 `[N, D]` is it
    standardized with the observed cells' `mean` and `std` `[D]` (0 at missing cells),
    `observed` bool `[N, D]`; for bundled sources, whose cells were removed on purpose, `truth`
    float64 `[N, D]` (the complete table in the source's units, `raw` at observed cells) and
    `removed` bool `[N, D]`; else both None. `columns` names the D columns.
    """

    columns: tuple[str, ...]
    raw: np.ndarray
    values: np.ndarray
    observed: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    truth: np.ndarray | None
    removed: np.ndarray | None


@functools.lru_cache(maxsize=8)
def _masked_table(source: str, missing_rate: float, missing_seed: int) -> MaskedTable:
    if source in BUNDLED_TABLES:
        truth, columns = bundled_table(source, standardized=False)
        raw, removed = remove_cells(truth, missing_rate, missing_seed)
    else:
        (raw, columns), truth, removed = read_table_file(source), None, None
    observed = ~np.isnan(raw)
    empty = [int(c) for c in np.flatnonzero(~observed.any(0))]
    if empty:
        raise ValueError(f"data.source={source!r}: columns {empty} have no observed cell")
    mean = np.nanmean(raw, axis=0)
    std = np.nanstd(raw, axis=0)
    std = np.where(std > 0, std, 1.0)
    values = np.where(observed, (raw - mean) / std, 0.0).astype(np.float32)
    return MaskedTable(columns, raw, values, observed, mean, std, truth, removed)


def masked_table(data_config: Any) -> MaskedTable:
    """The table named by `data_config.source`, standardized, with its missing cells (cached)."""
    data_config = complete_data(TablesData, data_config)
    return _masked_table(str(data_config.source), float(data_config.missing_rate), int(data_config.missing_seed))


def tables_config(source: str = "wine", missing_rate: float = 0.3, missing_seed: int = 0) -> ml_collections.ConfigDict:
    """The `data` section of the `tables` kind; `missing_rate` / `missing_seed` apply to bundled tables."""
    return section_config(TablesData, source=source, missing_rate=missing_rate, missing_seed=missing_seed)


def tables_train_dataset(
    data_config: Any, global_batch_size: int, seed: int, process_index: int, process_count: int
) -> grain.IterDataset:
    """Endless shuffled batches of rows `{"values", "observed"}`."""
    data_config = complete_data(TablesData, data_config)
    table = masked_table(data_config)
    batch = per_process_batch_size(global_batch_size, process_count)
    rows = table.values.shape[0]
    if batch > rows:
        raise ValueError(f"train.batch_size={global_batch_size} is larger than the table ({rows} rows)")
    records = [{"values": v, "observed": o} for v, o in zip(table.values, table.observed, strict=True)]
    ds = grain.MapDataset.source(records)[process_index::process_count].shuffle(seed=seed).repeat(None)
    return batched_stream(ds, global_batch_size, process_count, data_config)


def tables_batch_spec(data_config: Any, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    columns = masked_table(data_config).values.shape[1]
    return {
        "values": jax.ShapeDtypeStruct((batch_size, columns), jnp.float32),
        "observed": jax.ShapeDtypeStruct((batch_size, columns), jnp.bool_),
    }


TABLES = register_data_kind(DataKind("tables", tables_train_dataset, tables_batch_spec))
