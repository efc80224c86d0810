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
for its missing cells, so what can be scored is scored: a seeded tenth of its observed cells is
hidden again and imputed by the model, by column means and by scikit-learn's `KNNImputer`
(5 neighbours), in units of each column's observed std. The model saw those cells in training,
so this checks the fit, not generalization; the rows' split says so.
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
from mmjax.methods.protocol import EvalResult
from mmjax.methods.table_fill import impute_table

IMPUTED_CSV = "imputed.csv"
RMSE = "RMSE (column std units)"
SPLIT = "removed cells"


RECHECK_RATE = 0.1
RECHECK_SPLIT = "observed cells hidden again (1/10, seen in training)"
RECHECK_RMSE = "RMSE (observed column std units)"


def scaled_rmse(filled: np.ndarray, truth: np.ndarray, cells: np.ndarray, std: np.ndarray) -> float:
    """RMSE of `filled` against `truth` `[N, D]` on `cells` (bool), each column divided by its `std` `[D]`."""
    err = (filled - truth) / np.where(std > 0, std, 1.0)
    return float(np.sqrt(np.mean(err[cells] ** 2)))


def column_std_rmse(filled: np.ndarray, table: MaskedTable) -> float:
    """RMSE of `filled` `[N, D]` (the source's units) on `table`'s removed cells, in complete-column std units."""
    return scaled_rmse(filled, table.truth, table.removed, table.truth.std(0))


def hide_observed(table: MaskedTable, rate: float, seed: int) -> np.ndarray:
    """bool `[N, D]`: a seeded `rate` of the observed cells, leaving each column at least one observed cell."""
    rng = np.random.default_rng(seed)
    hidden = table.observed & (rng.random(table.observed.shape) < rate)
    for col in np.flatnonzero(~(table.observed & ~hidden).any(0)):
        hidden[rng.choice(np.flatnonzero(table.observed[:, col])), col] = False
    return hidden


def recheck_rows(config: Any, method: Any, params: Any, table: MaskedTable) -> list[EvalResult]:
    """A user's table: the model, column means and KNN on a tenth of the observed cells hidden again."""
    hidden = hide_observed(table, RECHECK_RATE, config.seed)
    kept = table.observed & ~hidden
    predicted = impute_table(method, params, np.where(kept, table.values, np.nan))
    raw = np.where(kept, table.raw, np.nan)
    means = np.nanmean(raw, axis=0)
    fillers = {
        config.method: np.where(kept, table.raw, predicted * table.std + table.mean),
        "column means": np.where(kept, table.raw, means),
    }
    try:
        from sklearn.impute import KNNImputer  # noqa: PLC0415 - optional (the `tables` extra)

        fillers["KNN imputer (k=5)"] = KNNImputer(n_neighbors=5).fit_transform(raw)
    except ImportError:
        announce("  KNN baseline skipped: scikit-learn is not installed (pip install 'mmjax[tables]')")
    announce(f"  {int(hidden.sum())} observed cells hidden again and imputed ({RECHECK_SPLIT})")
    return [
        EvalResult(
            "imputation",
            name,
            RECHECK_RMSE,
            scaled_rmse(f, table.raw, hidden, table.std),
            baseline=name != config.method,
            split=RECHECK_SPLIT,
        )
        for name, f in fillers.items()
    ]


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

    Rows: protocol `imputation`, for the trained model (`<config.method>`) and its baselines. A
    bundled source: split `removed cells`, metric `RMSE (column std units)`, against `column means`.
    A user's file: split `RECHECK_SPLIT`, against `column means` and a KNN imputer.
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
    elif table.observed.sum() > table.observed.shape[1]:  # a user's file with cells to hide
        results = recheck_rows(config, method, params, table)
    if jax.process_index() == 0:
        path = write_csv(epath.Path(workdir) / IMPUTED_CSV, table.columns, filled, table.observed)
        announce(f"filled table, in the units of {config.data.source}: {path}")
    return results


__all__ = ["IMPUTED_CSV", "column_std_rmse", "evaluate_tables", "hide_observed", "scaled_rmse", "write_csv"]
