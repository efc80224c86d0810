"""Tables in and out of the imputer: validation, one-hot categoricals, standardization.

A `TableCodec` is fitted on the training table. It turns a NumPy array or pandas
DataFrame into a float `[N, D']` matrix (numeric columns standardized with their
observed mean and std, each categorical column as one-hot columns, NaN = missing) and
turns a filled matrix back into a table like the input, with every observed cell
copied unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np


def is_dataframe(table: Any) -> bool:
    """True for a pandas DataFrame (pandas is optional: it is never imported here)."""
    return hasattr(table, "iloc") and hasattr(table, "columns") and hasattr(table, "dtypes")


def _column_names(table: Any) -> list:
    if is_dataframe(table):
        return list(table.columns)
    return list(range(_as_2d(table).shape[1]))


def _as_2d(table: Any) -> np.ndarray:
    array = np.asarray(table)
    if array.ndim != 2:
        raise ValueError(f"X must be a 2-D table [rows, columns]; got an array of shape {array.shape}")
    return array


def _column(table: Any, name: Any) -> np.ndarray:
    if is_dataframe(table):
        return table[name].to_numpy()
    return _as_2d(table)[:, name]


def missing_cells(column: np.ndarray) -> np.ndarray:
    """bool `[N]`: NaN, None or pandas NA cells of one column."""
    if column.dtype.kind in "fc":
        return np.isnan(column)
    if column.dtype.kind in "iub":
        return np.zeros(column.shape, bool)
    try:
        import pandas as pd

        return np.asarray(pd.isna(column), bool)
    except ImportError:
        return np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in column], bool)


def _numeric(column: np.ndarray, name: Any) -> np.ndarray:
    """float64 `[N]` of a numeric column (NaN where missing), or a clear error."""
    if column.dtype.kind in "iufb":
        return column.astype(np.float64)
    missing = missing_cells(column)
    out = np.full(column.shape, np.nan)
    for i in np.flatnonzero(~missing):
        value = column[i]
        if isinstance(value, (str, bytes)) or not np.isscalar(value):
            raise TypeError(
                f"column {name!r} is not numeric (row {i} holds {value!r}); "
                f"declare it in categorical=[...] or convert it to numbers"
            )
        try:
            out[i] = float(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"column {name!r} is not numeric (row {i} holds {value!r}); "
                f"declare it in categorical=[...] or convert it to numbers"
            ) from None
    return out


def _category_key(value: Any) -> tuple[str, str]:
    return (type(value).__name__, str(value))


@dataclasses.dataclass(frozen=True)
class TableCodec:
    """What `fit` learned about a table's columns.

    Attributes:
      columns: the input's column names (DataFrame) or indices (array).
      categories: for each categorical column name, its observed categories (sorted).
      mean, std: per numeric column, its observed mean and std (std 1 where constant).
      dataframe: whether the input was a DataFrame.
    """

    columns: tuple
    categories: dict
    mean: dict
    std: dict
    dataframe: bool

    @classmethod
    def fit(cls, table: Any, categorical: Sequence | None = None) -> TableCodec:
        """Learn columns, categories and statistics from `table`; refuse bad input clearly."""
        columns = _column_names(table)
        categorical = list(categorical or [])
        unknown = [c for c in categorical if c not in columns]
        if unknown:
            raise ValueError(f"categorical={categorical}: {unknown} are not columns of X; columns are {columns}")
        if not columns or not len(_column(table, columns[0])):
            raise ValueError(
                f"X is empty ({len(_column(table, columns[0])) if columns else 0} rows, {len(columns)} "
                "columns): nothing to fit"
            )
        categories, mean, std = {}, {}, {}
        for name in columns:
            column = _column(table, name)
            missing = missing_cells(column)
            if missing.all():
                raise ValueError(f"column {name!r} has no observed value (all {len(column)} cells missing); drop it")
            if name in categorical:
                categories[name] = tuple(sorted(set(column[~missing].tolist()), key=_category_key))
                continue
            values = _numeric(column, name)
            _check_finite(values, name)
            mean[name], spread = _moments(values)
            std[name] = spread if spread > 0 else 1.0
        return cls(tuple(columns), categories, mean, std, is_dataframe(table))

    @property
    def groups(self) -> tuple[int, ...]:
        """Group id of each encoded column: one per input column (one-hot columns share theirs)."""
        out = []
        for g, name in enumerate(self.columns):
            out += [g] * (len(self.categories[name]) if name in self.categories else 1)
        return tuple(out)

    def check(self, table: Any) -> None:
        """Refuse a table whose shape or columns differ from the fitted one."""
        if self.dataframe != is_dataframe(table):
            kind = "a pandas DataFrame" if self.dataframe else "a NumPy array"
            raise TypeError(f"X must be {kind}, as at fit; got {type(table).__name__}")
        columns = _column_names(table)
        if len(columns) != len(self.columns):
            raise ValueError(f"X has {len(columns)} columns; the imputer was fitted on {len(self.columns)}")
        if self.dataframe and tuple(columns) != self.columns:
            raise ValueError(f"X's columns {columns} differ from those seen at fit {list(self.columns)}")

    def encode(self, table: Any) -> np.ndarray:
        """float64 `[N, D']`: standardized numeric columns, one-hot categoricals, NaN = missing."""
        self.check(table)
        parts = []
        for name in self.columns:
            column = _column(table, name)
            missing = missing_cells(column)
            if name in self.categories:
                known = self.categories[name]
                index = {v: i for i, v in enumerate(known)}
                onehot = np.zeros((len(column), len(known)))
                for i in np.flatnonzero(~missing):
                    if column[i] not in index:
                        raise ValueError(
                            f"column {name!r}, row {i}: category {column[i]!r} was not seen at fit {list(known)}"
                        )
                    onehot[i, index[column[i]]] = 1.0
                onehot[missing] = np.nan
                parts.append(onehot)
            else:
                values = _numeric(column, name)
                _check_finite(values, name)
                parts.append(((values - self.mean[name]) / self.std[name])[:, None])
        return np.concatenate(parts, axis=1)

    def decode(self, filled: np.ndarray, table: Any) -> Any:
        """Fill `table`'s missing cells from `filled` `[N, D']` (standardized); observed cells are copied.

        Categorical cells get the category with the largest predicted one-hot value.
        Returns the same type as `table` (a DataFrame keeps its index and columns).
        """
        out = table.copy() if self.dataframe else np.array(table, copy=True)
        if not self.dataframe and out.dtype.kind in "iub":
            return out  # integer arrays hold no missing cell
        start = 0
        for name in self.columns:
            column = _column(table, name)
            missing = missing_cells(column)
            if name in self.categories:
                width = len(self.categories[name])
                choice = np.argmax(filled[:, start : start + width], axis=1)
                fill = np.array(self.categories[name], dtype=object)[choice]
            else:
                width = 1
                fill = filled[:, start] * self.std[name] + self.mean[name]
            start += width
            if not missing.any():
                continue
            if self.dataframe:
                rows = out.index[missing]
                if name not in self.categories and out[name].dtype.kind in "iub":
                    out[name] = out[name].astype(np.float64)
                out.loc[rows, name] = fill[missing]
            else:
                out[missing, name] = fill[missing]
        return out


def _moments(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of the observed values, computed on values divided by their largest
    magnitude: finite for any finite column (squares of 1e200 overflow float64)."""
    scale = float(np.nanmax(np.abs(values)))
    if scale == 0.0:
        return 0.0, 0.0
    scaled = values / scale
    return float(np.nanmean(scaled)) * scale, float(np.nanstd(scaled)) * scale


def _check_finite(values: np.ndarray, name: Any) -> None:
    bad = np.flatnonzero(np.isinf(values))
    if bad.size:
        raise ValueError(f"column {name!r} holds inf at row {int(bad[0])}; only NaN may mark a missing cell")
