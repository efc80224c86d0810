"""Time series: per-variate patching, RevIN, PatchTST, baselines and the bundled data."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.data.kinds import data_kind
from mmjax.data.series import SEASONS, load_series, series_windows, split_series, ucr_dataset
from mmjax.evaluate.protocols import settings
from mmjax.evaluate.series import (
    evaluate_series,
    forecast_rmse,
    imputation_rmse,
    last_value,
    linear_interpolation,
    seasonal_naive,
)
from mmjax.methods.registry import build_method
from mmjax.ops.series import instance_stats, patch_series, patchtst_sincos, unpatch_series
from tests.helpers import descend, load_experiment


def tiny_config(window=16):
    config = load_experiment("patchtst_series", f"window={window}")
    config.model.update(width=16, depth=1, heads=2, mlp_dim=32)
    config.patchtst.patch_len = 4
    return config


@pytest.fixture(scope="module")
def tiny():
    """A 16-step, 4-patch PatchTST and its initial params (shared: compiling is the slow part)."""
    method = build_method(tiny_config())
    params = jax.jit(method.init)(jax.random.key(1), {"series": jnp.zeros((1, 16, 1))})
    return method, params


def test_patching_layout_and_round_trip():
    x = np.random.default_rng(0).normal(size=(2, 12, 3)).astype(np.float32)
    patches = patch_series(jnp.asarray(x), 4)
    assert patches.shape == (2, 3, 3, 4)
    for b, v, j in itertools.product(range(2), range(3), range(3)):
        np.testing.assert_array_equal(patches[b, v, j], x[b, 4 * j : 4 * j + 4, v])
    np.testing.assert_array_equal(unpatch_series(patches), x)
    with pytest.raises(ValueError, match="patch_len=5"):
        patch_series(jnp.asarray(x), 5)


def test_strided_patching_keeps_the_last_steps_as_hf_does():
    x = np.random.default_rng(3).normal(size=(2, 11, 2)).astype(np.float32)
    patches = patch_series(jnp.asarray(x), 4, stride=3)  # (11 - 4) // 3 + 1 = 3 patches; step 0 dropped
    assert patches.shape == (2, 2, 3, 4)
    for j, start in enumerate((1, 4, 7)):
        np.testing.assert_array_equal(patches[:, :, j], np.transpose(x[:, start : start + 4], (0, 2, 1)))
    np.testing.assert_array_equal(patch_series(jnp.asarray(x[:, 3:]), 4, stride=4), patch_series(x[:, 3:], 4))
    with pytest.raises(ValueError, match="series length 3 must be at least patch_len=4"):
        patch_series(jnp.asarray(x[:, :3]), 4, stride=1)


def test_patchtst_sincos_table_is_interleaved_and_normalized():
    table = patchtst_sincos(5, 6)
    raw = np.zeros((5, 6))
    for pos in range(5):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            raw[pos, 2 * i], raw[pos, 2 * i + 1] = np.sin(angle), np.cos(angle)
    expected = (raw - raw.mean()) / (raw.std(ddof=1) * 10)
    np.testing.assert_allclose(table, expected, atol=1e-7)
    assert abs(table.mean()) < 1e-7 and abs(table.std(ddof=1) - 0.1) < 1e-6
    with pytest.raises(ValueError, match="model.width=5"):
        patchtst_sincos(5, 5)


def test_hf_model_options_are_opt_in_and_reach_the_model():
    batch = {"series": jax.random.normal(jax.random.key(0), (2, 16, 2))}
    default = build_method(tiny_config())
    params = jax.eval_shape(default.init, jax.random.key(1), batch)
    assert "pos_embedding" in params and "norm" in params["encoder"]  # today's model unchanged
    config = tiny_config()
    config.model.update(positions="sincos", final_norm=False, layer_norm_eps=1e-5)
    config.patchtst.patch_stride = 2
    method = build_method(config)
    assert method.num_patches == 7 and method.model.transformer.layer_norm_eps == 1e-5
    params = jax.jit(method.init)(jax.random.key(1), batch)
    assert "pos_embedding" not in params and "norm" not in params["encoder"]
    loss, _ = jax.jit(method.loss)(params, batch, jax.random.key(2))
    assert np.isfinite(float(loss))
    with pytest.raises(ValueError, match="reconstruct needs patches that tile data.window=16: patchtst.patch_stride=2"):
        method.reconstruct(params, batch["series"], jnp.zeros((2, 14), bool))
    config.model.positions = "rope"
    with pytest.raises(ValueError, match=r"model\.positions='rope'"):
        build_method(config)


def test_instance_stats_use_only_observed_steps():
    x = np.random.default_rng(1).normal(size=(2, 10, 2)).astype(np.float32) * 3 + 1
    observed = np.random.default_rng(2).uniform(size=x.shape) > 0.4
    x_leak = np.where(observed, x, 1e6).astype(np.float32)  # hidden values must not matter
    mean, std = instance_stats(jnp.asarray(x_leak), jnp.asarray(observed))
    for b, v in itertools.product(range(2), range(2)):
        values = x[b, observed[b, :, v], v]
        np.testing.assert_allclose(mean[b, 0, v], values.mean(), rtol=1e-5)
        np.testing.assert_allclose(std[b, 0, v], np.sqrt(values.var() + 1e-5), rtol=1e-4)


def test_variates_are_encoded_independently(tiny):
    method, params = tiny
    x = jax.random.normal(jax.random.key(0), (2, 16, 3))
    features = jax.jit(method.features, static_argnames="pool")
    tokens = features(params, x, pool="tokens")
    assert tokens.shape == (2, 3, 4, 16)
    changed = features(params, x.at[:, :, 1].multiply(-2.0).at[:, :, 1].add(3.0), pool="tokens")
    np.testing.assert_allclose(changed[:, [0, 2]], tokens[:, [0, 2]], atol=1e-5)  # other variates untouched
    assert not np.allclose(changed[:, 1], tokens[:, 1], atol=1e-3)
    assert features(params, x).shape == (2, 3 * 16)  # mean over patches, variates concatenated


def test_reconstruct_ignores_hidden_values_and_keeps_units(tiny):
    method, params = tiny
    x = jax.random.normal(jax.random.key(0), (2, 16, 1)) * 50 + 300
    hidden = jnp.array([[False, True, False, False], [True, False, False, True]])
    reconstruct = jax.jit(method.reconstruct)
    out = reconstruct(params, x, hidden)
    steps = np.repeat(np.asarray(hidden), 4, axis=1)[..., None]
    bumped = reconstruct(params, jnp.where(steps, 1e4, x), hidden)
    np.testing.assert_allclose(out, bumped, rtol=1e-5)
    assert abs(float(jnp.mean(out)) - 300) < 100  # de-normalized back to the series' scale


def test_a_few_steps_reduce_the_loss(tiny):
    method, params = tiny
    windows, _ = series_windows(("co2", "sunspots"), 16, "train", stride=8)
    batch = {"series": jnp.asarray(windows[:64])}
    rng = jax.random.key(1)
    losses = descend(lambda p: method.loss(p, batch, rng)[0], params, steps=30)
    assert losses[-1] < 0.5 * losses[0]


def test_baselines_match_hand_computed_values():
    series = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    observed = np.array([[True, False, False, True, False, True]])
    gappy = np.where(observed, series, -99.0)  # hidden values must not be used
    np.testing.assert_allclose(linear_interpolation(gappy, observed), [[1, 2, 3, 4, 5, 6]])
    np.testing.assert_allclose(last_value(gappy, observed), [[1, 1, 1, 4, 4, 6]])
    # A hidden start takes the first observed value.
    np.testing.assert_allclose(last_value(series, np.array([[False, False, True, False, False, False]])), [[3] * 6])
    context = np.array([[0.0, 1, 2, 10, 11, 12], [5, 6, 7, 8, 9, 10]])
    np.testing.assert_allclose(seasonal_naive(context, 4, np.array([3, 2])), [[10, 11, 12, 10], [9, 10, 9, 10]])


def test_series_data_is_deterministic_and_split_without_overlap():
    config = tiny_config()
    kind = data_kind(config.data)
    assert kind.name == "series"
    first = next(iter(kind.train_dataset(config.data, 8, 0, 0, 1)))
    again = next(iter(kind.train_dataset(config.data, 8, 0, 0, 1)))
    other = next(iter(kind.train_dataset(config.data, 8, 1, 0, 1)))
    assert first["series"].shape == (8, 16, 1) == kind.batch_spec(config.data, 8)["series"].shape
    np.testing.assert_array_equal(first["series"], again["series"])
    assert not np.array_equal(first["series"], other["series"])
    for name in SEASONS:
        values = load_series(name)
        train, test = split_series(values, "train", 96), split_series(values, "test", 96)
        assert len(train) + len(test) == len(values) and len(test) >= 96 and not np.isnan(values).any()


def test_ucr_sets_load_locally_and_refuse_others():
    x, y = ucr_dataset("ItalyPowerDemand", "train", 32)
    assert x.shape == (67, 32, 1) and x.dtype == np.float32
    assert sorted(set(y.tolist())) == [0, 1]
    with pytest.raises(ValueError, match="not bundled"):
        ucr_dataset("Wafer", "train", 32)


def test_evaluation_rows_name_the_model_and_the_baselines(tiny):
    method, trained = tiny
    config = tiny_config()
    config.data.update(sources=("sunspots", "elnino"), probe_sets=("ItalyPowerDemand",))  # seasons 11, 12
    config.eval.series.update(steps=20, horizon_patches=1, stride=16)
    results = evaluate_series(config, method, trained, settings(config, "series"))
    rows = {(r.protocol, r.name): r for r in results}
    assert sorted(rows) == [
        ("forecast", "last value"),
        ("forecast", "patchtst encoder"),
        ("forecast", "random encoder"),
        ("forecast", "seasonal naive"),
        ("imputation", "last value"),
        ("imputation", "linear interpolation"),
        ("imputation", "patchtst encoder"),
        ("imputation", "random encoder"),
        ("linear probe (ItalyPowerDemand)", "patchtst encoder"),
        ("linear probe (ItalyPowerDemand)", "random encoder"),
    ]
    assert all(r.baseline == (r.name != "patchtst encoder") and r.split == "test" for r in results)
    for r in results:
        assert r.metric == ("accuracy" if r.protocol.startswith("linear probe") else "RMSE (window std units)"), r
        assert 0 <= r.value <= 1 if r.metric == "accuracy" else r.value > 0, r
    # Each model row scores its own parameters (the random encoder: seed + 12345).
    windows, _ = series_windows(tuple(config.data.sources), 16, "test", stride=config.eval.series.stride)
    random = jax.jit(method.init)(jax.random.key(config.seed + 12345), {"series": jnp.zeros((1, 16, 1))})
    imputed = imputation_rmse(method, {"t": trained, "r": random}, windows, method.mask_ratio, seed=config.seed)
    assert rows["imputation", "patchtst encoder"].value == imputed["t"]
    assert rows["imputation", "random encoder"].value == imputed["r"] != imputed["t"]
    # The forecast's last-value row by hand: the last patch hidden, filled with the last context step.
    truth = windows[..., 0].astype(np.float64)
    context, future = truth[:, :12], truth[:, 12:]
    scale = context.std(axis=1, keepdims=True) + 1e-5
    expected = np.sqrt(np.mean(((context[:, -1:] - future) / scale) ** 2))
    np.testing.assert_allclose(rows["forecast", "last value"].value, expected, rtol=1e-9)


def test_forecast_needs_a_whole_season_of_context(tiny):
    method, params = tiny
    windows, seasons = series_windows(("co2",), 16, "test")
    with pytest.raises(ValueError, match=r"8 context steps .* shorter than the longest season \(52 steps\)"):
        forecast_rmse(method, {}, windows, seasons, 2)


def test_attention_impl_reaches_the_model_and_pallas_gives_the_xla_loss():
    config = tiny_config()
    xla = build_method(config)
    config.model.attention_impl = "pallas"  # Pallas interpret mode on CPU
    pallas = build_method(config)
    assert (xla.model.transformer.attention_impl, pallas.model.transformer.attention_impl) == ("xla", "pallas")
    batch = {"series": jax.random.normal(jax.random.key(0), (2, 16, 2))}
    params = jax.jit(xla.init)(jax.random.key(1), batch)
    rng = jax.random.key(2)
    assert "pallas_call" in str(jax.make_jaxpr(pallas.loss)(params, batch, rng))
    want = jax.jit(xla.loss)(params, batch, rng)[0]
    got = jax.jit(pallas.loss)(params, batch, rng)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    config.model.attention_impl = "flash"
    with pytest.raises(ValueError, match=r"model\.attention_impl='flash': expected one of") as err:
        build_method(config)
    assert "\n" not in str(err.value)
