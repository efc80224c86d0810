"""`MaskedImputer`'s training recipe chosen from the table's shape (rows, columns).

The recipe tuned on wine and diabetes (10-13 columns, a few hundred rows) is the narrow
rule; wider tables (`WIDE_COLUMNS` or more model columns) get a wider model, a larger
re-mask and more steps, and tables of many rows larger batches, so a fit's step count stays
affordable. The wide values were chosen on seed 100 only (see `MaskedImputer`'s docstring).
Any value the user gives wins over the rule.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

WIDE_COLUMNS = 48  # model columns (a categorical variable counts once per category) from which a table is wide
LARGE_ROWS = 1024  # rows from which a table gets the larger batch


@dataclasses.dataclass(frozen=True)
class TableRecipe:
    """The shape-dependent part of a fit: encoder / decoder width, re-mask ratio and the step budget."""

    width: int
    decoder_width: int
    remask_ratio: float
    batch_size: int
    epochs: int
    min_steps: int

    def fit_epochs(self, num_rows: int) -> int:
        """Epochs trained on `num_rows` rows: `epochs`, raised so a fit takes >= `min_steps` steps."""
        batches = math.ceil(num_rows / min(self.batch_size, num_rows))
        return max(self.epochs, math.ceil(self.min_steps / batches))


def table_recipe(num_rows: int, num_columns: int) -> TableRecipe:
    """The rule: the recipe for a table of `num_rows` rows and `num_columns` model columns.

    - fewer than `WIDE_COLUMNS` columns: width 32, re-mask 0.3 (the wine / diabetes recipe);
      else width 64 and re-mask 0.5 (more cells per row stay visible after re-masking).
    - fewer than `LARGE_ROWS` rows: batches of 64, else 128.
    - 100 epochs and at least 600 steps (1200 on wide tables).
    """
    wide = num_columns >= WIDE_COLUMNS
    return TableRecipe(
        width=64 if wide else 32,
        decoder_width=64 if wide else 32,
        remask_ratio=0.5 if wide else 0.3,
        batch_size=128 if num_rows >= LARGE_ROWS else 64,
        epochs=100,
        min_steps=1200 if wide else 600,
    )


def _check(name: str, value: Any, expected: str, ok: bool) -> None:
    if isinstance(value, bool) or not ok:
        raise ValueError(f"MaskedImputer {name}={value!r}: expected {expected}, or None (chosen from the table)")


def resolve_recipe(num_rows: int, num_columns: int, **given: Any) -> TableRecipe:
    """`table_recipe(num_rows, num_columns)` with every `given` value that is not None in its place.

    Raises a one-line ValueError naming a given value that is out of range.
    """
    unknown = set(given) - {f.name for f in dataclasses.fields(TableRecipe)}
    if unknown:
        raise TypeError(f"resolve_recipe got unknown fields {sorted(unknown)}")
    given = {k: v for k, v in given.items() if v is not None}
    for name, value in given.items():
        if name == "remask_ratio":
            _check(name, value, "a number in (0, 1)", isinstance(value, numbers.Real) and 0 < value < 1)
        else:
            low = 0 if name == "min_steps" else 1
            _check(name, value, f"an int >= {low}", isinstance(value, numbers.Integral) and value >= low)
    given = {k: float(v) if k == "remask_ratio" else int(v) for k, v in given.items()}
    return dataclasses.replace(table_recipe(num_rows, num_columns), **given)
