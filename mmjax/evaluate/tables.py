"""End-of-run report of a ReMasker run on the `tables` data kind: impute the training table.

The filled table is written to `<workdir>/imputed.csv` in the units of the table given: a
user's file comes back in its own units with its observed cells unchanged, a bundled table
in scikit-learn's raw values. The write is whole or nothing (a temporary file renamed into
place), so a crash never leaves half a table.

Bundled sources had cells removed on purpose, so they are scored: RMSE on the removed cells
in units of each complete column's standard deviation (each column standardized with its
complete-data mean and std, as `benchmarks/imputation.py` does), against filling each cell
with its column's observed mean. A pooled RMSE in raw units would be ruled by the columns of
the largest scale (wine's proline has a std of 314, its hue 0.23). A user's file has no truth
to score: no rows, only the filled table.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any

import jax
import numpy as np
from etils import epath

from mmjax.data.tables import MaskedTable, masked_table
from mmjax.evaluate.report import announce
from mmjax.files import write_text_atomic
from mmjax.impute.fit import impute_table
from mmjax.methods.protocol import EvalResult

IMPUTED_CSV = "imputed.csv"
RMSE = "RMSE (column std units)"
SPLIT = "removed cells"


def column_std_rmse(filled: np.ndarray, table: MaskedTable) -> float:
    """RMSE of `filled` `[N, D]` (the source's units) on `table`'s removed cells, in complete-column std units."""
    scale = np.where(table.truth.std(0) > 0, table.truth.std(0), 1.0)
    err = (filled - table.truth) / scale
    return float(np.sqrt(np.mean(err[table.removed] ** 2)))


def write_csv(path: str | os.PathLike, columns: tuple[str, ...], table: np.ndarray, exact: np.ndarray) -> str:
    """A header row and `table`'s rows; returns the path.

    Cells where `exact` (bool, like `table`) are written so that they read back bit for bit (the
    user's own cells), the others with 7 significant digits (a float32 model's precision).
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for values, keep in zip(table.tolist(), exact.tolist(), strict=True):
        writer.writerow([repr(v) if k else f"{v:.7g}" for v, k in zip(values, keep, strict=True)])
    return write_text_atomic(path, text.getvalue())


def evaluate_tables(config: Any, method: Any, params: Any, workdir: str) -> list[EvalResult]:
    """Impute `config.data`'s table with the trained ReMasker and write `<workdir>/imputed.csv`.

    Rows (bundled sources only): protocol `imputation`, split `removed cells`, metric
    `RMSE (column std units)`, for the trained model (`<config.method>`) and the `column means`
    baseline.
    """
    table = masked_table(config.data)
    missing = int((~table.observed).sum())
    rows, cols = table.values.shape
    announce(f"imputation: {missing} missing cells of {config.data.source} ({rows} rows x {cols} columns)")
    predicted = impute_table(method, params, np.where(table.observed, table.values, np.nan))
    filled = np.where(table.observed, table.raw, predicted * table.std + table.mean)  # the source's units
    results = []
    if table.truth is not None:
        fillers = {config.method: filled, "column means": np.broadcast_to(table.mean, filled.shape)}
        results = [
            EvalResult("imputation", name, RMSE, column_std_rmse(f, table), baseline=name != config.method, split=SPLIT)
            for name, f in fillers.items()
        ]
    if jax.process_index() == 0:
        path = write_csv(epath.Path(workdir) / IMPUTED_CSV, table.columns, filled, table.observed)
        announce(f"filled table, in the units of {config.data.source}: {path}")
    return results


__all__ = ["IMPUTED_CSV", "column_std_rmse", "evaluate_tables", "write_csv"]
