"""Fill the missing cells of a table with a trained ReMasker: pure functions over the method and its params.

Batch by batch on the device; `passes > 1` averages each missing cell over re-masked views
(`ReMasker.impute_averaged`). The fitting loop that produces the params is `mmjax.impute.fit`
(run level); the end-of-run evaluation (`mmjax.evaluate.tables`) and the scikit-learn style
`MaskedImputer` both fill tables through here.
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np

from mmjax.methods.remasker import ReMasker


def impute_table(
    method: ReMasker,
    params: dict,
    values: np.ndarray,
    batch_size: int = 1024,
    *,
    passes: int = 1,
    ratio: float = 0.3,
    seed: int = 0,
) -> np.ndarray:
    """float64 `[N, D]`: `values` (standardized, NaN = missing) with the missing cells predicted.

    `passes > 1` averages each missing cell over that many views (`ReMasker.impute_averaged`:
    pass 0 shows all observed cells, the others re-mask a random `ratio` of them; `seed` fixes them).
    """
    return _fill(_impute, method, params, values, batch_size, passes, ratio, seed)


def impute_ensemble(
    method: ReMasker,
    params: dict,
    values: np.ndarray,
    batch_size: int = 1024,
    *,
    passes: int = 1,
    ratio: float = 0.3,
    seed: int = 0,
) -> np.ndarray:
    """float64 `[N, D]`: `values` with the missing cells set to the mean prediction of `fit_ensemble`'s
    members (`params` with a leading `[K]` axis); `passes`, `ratio`, `seed` as `impute_table`'s, per member."""
    return _fill(_impute_ensemble, method, params, values, batch_size, passes, ratio, seed)


def _fill(
    predict, method: ReMasker, params: dict, values: np.ndarray, batch_size: int, passes: int, ratio: float, seed: int
) -> np.ndarray:
    """`values` with its NaN cells set from `predict(method, passes, ratio, params, values, observed, key)`,
    batch by batch."""
    if passes < 1:
        raise ValueError(f"passes (views averaged per missing cell) must be >= 1, got {passes}")
    observed = ~np.isnan(values)
    key = jax.random.key(seed)
    out = []
    for start in range(0, values.shape[0], batch_size):
        part = slice(start, start + batch_size)
        batch_key = jax.random.fold_in(key, start)
        pred = predict(method, passes, ratio, params, np.nan_to_num(values[part]), observed[part], batch_key)
        out.append(np.asarray(jax.device_get(pred)))
    filled = np.concatenate(out).astype(np.float64)
    return np.where(observed, values, filled)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _impute(method: ReMasker, passes: int, ratio: float, params: dict, values, observed, key) -> jax.Array:
    return method.impute_averaged(params, values, observed, key, passes, ratio)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _impute_ensemble(method: ReMasker, passes: int, ratio: float, params: dict, values, observed, key) -> jax.Array:
    members = jax.tree.leaves(params)[0].shape[0]
    keys = jax.random.split(key, members)
    one = partial(_impute.__wrapped__, method, passes, ratio)
    return jax.vmap(one, in_axes=(0, None, None, 0))(params, values, observed, keys).mean(axis=0)


__all__ = ["impute_ensemble", "impute_table"]
