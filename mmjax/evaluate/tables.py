"""End-of-run report of a ReMasker run on the `tables` data kind: impute the training table.

Bundled sources had cells removed on purpose: the report is the RMSE on those cells (in the
source's units) against filling each with its column's observed mean. A user's file has no
truth to score; for both, the filled table is written to `<workdir>/imputed.csv` (a temporary
file renamed into place, so a crash never leaves half a table).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from mmjax.data.tables import masked_table


def evaluate_tables(config: Any, method: Any, params: Any, workdir: str) -> dict[str, Any]:
    """Impute `config.data`'s table with the trained ReMasker; print and return the scores."""
    from mmjax.impute.fit import impute_table

    table = masked_table(config.data)
    values = np.where(table.observed, table.values, np.nan)
    filled = impute_table(method, params, values) * table.std + table.mean  # the source's units
    report: dict[str, Any] = {"rows": int(values.shape[0]), "missing": int((~table.observed).sum())}
    if table.truth is not None:
        removed = table.removed
        rmse = float(np.sqrt(np.mean((filled[removed] - table.truth[removed]) ** 2)))
        column_means = np.broadcast_to(table.mean, filled.shape)
        mean_rmse = float(np.sqrt(np.mean((column_means[removed] - table.truth[removed]) ** 2)))
        report.update(rmse=rmse, mean_rmse=mean_rmse)
        print(f"\nimputation of {int(removed.sum())} removed cells of {config.data.source} (RMSE, standardized units)")
        print(f"| remasker | {rmse:.3f} |\n| column means | {mean_rmse:.3f} |")
    if jax.process_index() == 0:
        path = os.path.join(workdir, "imputed.csv")
        partial = path + ".tmp"
        np.savetxt(partial, filled, delimiter=",", fmt="%.9g", header=",".join(table.columns), comments="")
        os.replace(partial, path)
        report["imputed"] = path
        print(f"filled table: {path}")
    return report
