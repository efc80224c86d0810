"""Time-series evaluation: imputation and forecasting RMSE against simple baselines, and UCR probes.

Errors are RMSEs in units of each window's observed standard deviation (the std of its
visible steps), so series of different scales weigh the same.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.data.series import series_windows, ucr_dataset
from mmjax.evaluate.linear_probe import linear_probe
from mmjax.evaluate.report import announce
from mmjax.evaluate.sections import ProbeSection, SeriesSection
from mmjax.methods.protocol import EvalResult

RMSE = "RMSE (window std units)"


def linear_interpolation(series: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Fill unobserved steps of `[N, L]` rows by linear interpolation (constant beyond the ends)."""
    t = np.arange(series.shape[1])
    return np.stack([np.interp(t, t[o], s[o]) for s, o in zip(series, observed, strict=True)])


def last_value(series: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Fill unobserved steps of `[N, L]` rows with the last observed value (the first one before it)."""
    t = np.arange(series.shape[1])
    last = np.maximum.accumulate(np.where(observed, t, -1), axis=1)
    first = np.argmax(observed, axis=1)[:, None]
    return np.take_along_axis(series, np.where(last < 0, first, last), axis=1)


def seasonal_naive(context: np.ndarray, horizon: int, seasons: np.ndarray) -> np.ndarray:
    """Forecast `[N, horizon]` by repeating the last season of each `[N, C]` context row (`seasons` `[N]`)."""
    steps = np.arange(horizon)[None]
    index = context.shape[1] - seasons[:, None] + steps % seasons[:, None]
    return np.take_along_axis(context, index, axis=1)


def _scaled_rmse(pred: np.ndarray, truth: np.ndarray, hidden: np.ndarray, scale: np.ndarray) -> float:
    err = ((pred - truth) / scale[:, None]) ** 2
    return float(np.sqrt(err[hidden].mean()))


def _reconstruct(fn: Any, params: Any, windows: np.ndarray, hidden: np.ndarray, batch: int = 256) -> np.ndarray:
    """`fn` (a jitted `method.reconstruct`) over `windows` in batches; the first variate, `[N, L]`."""
    out = [
        np.asarray(fn(params, jnp.asarray(windows[i : i + batch]), jnp.asarray(hidden[i : i + batch])))
        for i in range(0, len(windows), batch)
    ]
    return np.concatenate(out)[..., 0]


def _hidden_steps(hidden: np.ndarray, patch_len: int) -> np.ndarray:
    return np.repeat(hidden, patch_len, axis=1)


def imputation_rmse(
    method: Any, params: dict[str, Any], windows: np.ndarray, mask_ratio: float, seed: int = 0
) -> dict[str, float]:
    """Hide random patches of univariate windows `[N, L, 1]`; RMSE on hidden steps of each filler.

    `params` maps a name (e.g. "patchtst encoder", "random encoder") to model parameters.
    Returns `{name: RMSE}` for each of them and each baseline filler (`linear interpolation`,
    `last value`), in window std units.
    """
    rng = np.random.default_rng(seed)
    n, p = len(windows), method.num_patches
    keep = int(p * (1 - mask_ratio))
    ranks = np.argsort(np.argsort(rng.uniform(size=(n, p)), axis=1), axis=1)
    hidden = ranks >= keep  # the patches ranked past `keep` are hidden
    return _fill_rmse(method, params, windows, hidden, {"linear interpolation": linear_interpolation})


def _fill_rmse(method, params, windows, hidden, baselines):
    """RMSE on hidden steps of each model (`params`) and each baseline filler, in window std units."""
    truth = windows[..., 0].astype(np.float64)
    steps = _hidden_steps(hidden, method.patch_len)
    observed = ~steps
    scale = np.array([s[o].std() + 1e-5 for s, o in zip(truth, observed, strict=True)])
    fn = jax.jit(method.reconstruct)  # one compile for all parameter sets
    out = {name: _scaled_rmse(_reconstruct(fn, p, windows, hidden), truth, steps, scale) for name, p in params.items()}
    for name, fill in {**baselines, "last value": last_value}.items():
        out[name] = _scaled_rmse(fill(truth, observed), truth, steps, scale)
    return out


def forecast_rmse(
    method: Any, params: dict[str, Any], windows: np.ndarray, seasons: np.ndarray, horizon_patches: int
) -> dict[str, float]:
    """Hide the last `horizon_patches` patches of each window `[N, L, 1]`; `{name: RMSE}` of each model
    (`params`: name -> parameters) and of `seasonal naive` and `last value`, in window std units."""
    n, p = len(windows), method.num_patches
    hidden = np.zeros((n, p), bool)
    hidden[:, p - horizon_patches :] = True
    horizon = horizon_patches * method.patch_len
    context = windows.shape[1] - horizon
    if context < int(np.max(seasons, initial=0)):
        raise ValueError(
            f"forecast: {context} context steps (window {windows.shape[1]} - "
            f"eval.series.horizon_patches={horizon_patches} x {method.patch_len}) are shorter than the longest "
            f"season ({int(np.max(seasons))} steps) of "
            "data.sources: the seasonal-naive baseline needs one whole season"
        )

    def naive(truth, observed):
        out = truth.copy()
        out[:, -horizon:] = seasonal_naive(truth[:, :-horizon], horizon, seasons)
        return out

    # Linear interpolation past the last observed step is the last value: not listed twice.
    return _fill_rmse(method, params, windows, hidden, {"seasonal naive": naive})


def ucr_probe(method: Any, params: dict[str, Any], name: str, length: int, probe: ProbeSection) -> dict[str, float]:
    """`{name: test accuracy}` of a linear probe on a bundled UCR set, from the `probe.pool`-ed features of
    each parameter set (`params`: name -> parameters)."""
    train_x, train_y = ucr_dataset(name, "train", length)
    test_x, test_y = ucr_dataset(name, "test", length)
    fn = jax.jit(partial(method.features, pool=probe.pool))
    out = {}
    for key, p in params.items():
        feats = [np.asarray(fn(p, jnp.asarray(x))) for x in (train_x, test_x)]
        out[key] = linear_probe(feats[0], train_y, feats[1], test_y, steps=probe.steps, l2=probe.l2)
    return out


def evaluate_series(config: Any, method: Any, params: Any, series: SeriesSection) -> list[EvalResult]:
    """The end-of-run report of a PatchTST run on `config.data`'s test windows and UCR sets.

    Rows, all on the test split: `imputation` and `forecast` with metric `RMSE (window std
    units)` for the trained model (`<config.method> encoder`), the same model at a random
    initialization (`random encoder`) and the baselines (`linear interpolation` or `seasonal
    naive`, and `last value`); `linear probe (<UCR set>)` with metric `accuracy` for the trained
    and the random encoder. Every row but the trained model's is a baseline.
    """
    data = config.data
    example = {"series": jnp.zeros((1, data.window, 1), jnp.float32)}
    trained = f"{config.method} encoder"
    sets = {trained: params, "random encoder": jax.jit(method.init)(jax.random.key(config.seed + 12345), example)}
    windows, seasons = series_windows(tuple(data.sources), data.window, "test", stride=series.stride)
    probes = ", ".join(data.probe_sets) or "none"
    announce(f"series evaluation: imputation and forecasting on {len(windows)} test windows; linear probes: {probes}")
    scores = {
        "imputation": imputation_rmse(method, sets, windows, method.mask_ratio, seed=config.seed),
        "forecast": forecast_rmse(method, sets, windows, seasons, series.horizon_patches),
    }
    for name in data.probe_sets:
        scores[f"linear probe ({name})"] = ucr_probe(method, sets, name, data.window, series)
    results = []
    for protocol, row in scores.items():
        metric = "accuracy" if protocol.startswith("linear probe") else RMSE
        results += [EvalResult(protocol, name, metric, value, baseline=name != trained) for name, value in row.items()]
    return results
