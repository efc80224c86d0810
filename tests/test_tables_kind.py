"""The `tables` data kind and ReMasker through the trainer (`experiments/remasker_wine.py`)."""

import csv

import jax
import numpy as np
import pytest

from mmjax.config import load_experiment
from mmjax.data.kinds import data_kind
from mmjax.data.tables import BUNDLED_TABLES, bundled_table, masked_table, remove_cells, tables_config
from mmjax.evaluate.protocols import run_protocols
from mmjax.evaluate.tables import RECHECK_SPLIT
from mmjax.methods import build_method
from mmjax.train import train
from tests.helpers import ROOT


def test_remove_cells_keeps_a_cell_in_every_column():
    table = np.arange(12.0).reshape(3, 4)
    masked, removed = remove_cells(table, 0.99, seed=0)
    assert removed.any(0).all() and (~removed).any(0).all()
    np.testing.assert_array_equal(np.isnan(masked), removed)
    np.testing.assert_array_equal(masked[~removed], table[~removed])


def test_a_user_csv_is_standardized_on_its_observed_cells(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,10\n,20\n3,\n")
    table = masked_table(tables_config(str(path)))
    assert table.columns == ("a", "b") and table.truth is None
    np.testing.assert_array_equal(table.raw, [[1, 10], [np.nan, 20], [3, np.nan]])
    np.testing.assert_array_equal(table.observed, [[True, True], [False, True], [True, False]])
    np.testing.assert_allclose(table.values[table.observed], [-1, -1, 1, 1], atol=1e-6)
    assert table.values[1, 0] == 0.0


def test_bad_tables_are_named(tmp_path):
    text = tmp_path / "text.csv"
    text.write_text("a,colour\n1,red\n2,blue\n")
    with pytest.raises(ValueError, match=r"\['colour'\] are not numeric"):
        masked_table(tables_config(str(text)))
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b\n1,\n2,\n")
    with pytest.raises(ValueError, match=r"columns \[1\] have no observed cell"):
        masked_table(tables_config(str(empty)))
    with pytest.raises(ValueError, match="expected a bundled table"):
        masked_table(tables_config("iris"))


SHAPES = {
    "breast_cancer": (569, 30),
    "wine": (178, 13),
    "diabetes": (442, 10),
    "digits": (1797, 61),
    "fertility": (192, 52),
    "star98": (303, 22),
    "macrodata": (203, 12),
}


@pytest.mark.parametrize("name", BUNDLED_TABLES)
def test_bundled_tables_load_offline_complete_and_varying(name):
    raw, columns = bundled_table(name, standardized=False)
    assert raw.shape == SHAPES[name] and len(set(columns)) == raw.shape[1]
    assert np.isfinite(raw).all()  # complete: every missing cell in a benchmark is one removed on purpose
    assert (raw.std(0) > 0).all()  # no constant column
    table, _ = bundled_table(name)
    np.testing.assert_allclose(table.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(table.std(0), 1, rtol=1e-9)


def test_what_the_bundled_tables_drop():
    _, digits = bundled_table("digits")
    assert {"pixel_0_0", "pixel_4_0", "pixel_4_7"}.isdisjoint(digits) and "pixel_0_1" in digits
    _, fertility = bundled_table("fertility")
    assert fertility == tuple(str(year) for year in range(1960, 2012))
    _, macro = bundled_table("macrodata")
    assert macro[0] == "realgdp" and "year" not in macro and "quarter" not in macro
    assert masked_table(tables_config("fertility", 0.3, 0)).values.shape == (192, 52)  # through the data kind
    assert set(SHAPES) == set(BUNDLED_TABLES) and sum(d >= 50 for _, d in SHAPES.values()) >= 2


def read_imputed(path) -> tuple[list[str], np.ndarray]:
    with open(path) as f:
        header = next(csv.reader(f))
    return header, np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def test_kind_batches_feed_remasker_and_the_report_keeps_observed_cells(tmp_path):
    from sklearn.datasets import load_wine

    config = load_experiment(ROOT / "experiments" / "remasker_wine.py", "steps=10")
    kind = data_kind(config.data)
    batch = next(iter(kind.train_dataset(config.data, 8, 0, 0, 1)))
    spec = kind.batch_spec(config.data, 8)
    assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {k: (s.shape, s.dtype) for k, s in spec.items()}
    assert 0.2 < 1 - batch["observed"].mean() < 0.45  # about 30% of the cells are missing
    method = build_method(config)
    params = method.init(jax.random.key(0), kind.example_batch(config.data, 8))
    assert np.isfinite(float(method.loss(params, batch, jax.random.key(1))[0]))
    results = run_protocols(config, method, params, str(tmp_path))[0]
    assert [(r.protocol, r.name, r.metric, r.baseline, r.split) for r in results] == [
        ("imputation", "remasker", "RMSE (column std units)", False, "removed cells"),
        ("imputation", "column means", "RMSE (column std units)", True, "removed cells"),
    ]
    # The column-means row by hand, in units of each complete column's std.
    wine = load_wine()
    truth = wine.data
    masked, removed = remove_cells(truth, config.data.missing_rate, config.data.missing_seed)
    err = (np.nanmean(masked, axis=0) - truth) / truth.std(axis=0)
    np.testing.assert_allclose(results[1].value, np.sqrt(np.mean(err[removed] ** 2)), rtol=1e-12)
    assert results[1].value > 0.5 and np.isfinite(results[0].value)
    # imputed.csv is in scikit-learn's units: observed cells exactly as loaded, the rest filled.
    header, filled = read_imputed(tmp_path / "imputed.csv")
    assert header == list(wine.feature_names) and filled.shape == truth.shape
    np.testing.assert_array_equal(filled[~removed], truth[~removed])
    assert np.isfinite(filled).all()
    scale = np.abs(filled[removed] - np.broadcast_to(truth.mean(0), truth.shape)[removed])
    assert np.all(scale < 20 * np.broadcast_to(truth.std(0), truth.shape)[removed])  # not standardized units


def test_a_user_table_comes_back_in_its_own_units(tmp_path):
    rng = np.random.default_rng(0)
    table = np.stack([rng.normal(5000, 100, 40), rng.normal(0.01, 0.002, 40), rng.integers(0, 9, 40)], axis=1)
    gappy = np.where(rng.random(table.shape) < 0.2, np.nan, table)
    path = tmp_path / "mine.csv"
    np.savetxt(path, gappy, delimiter=",", header="price,rate,count", comments="", fmt="%.17g")
    config = load_experiment(ROOT / "experiments" / "remasker_wine.py", f"source={path},steps=10")
    method = build_method(config)
    params = method.init(jax.random.key(0), data_kind(config.data).example_batch(config.data, 8))
    rows = run_protocols(config, method, params, str(tmp_path))[0]  # no truth: observed cells hidden again
    assert [r.name for r in rows] == ["remasker", "column means", "KNN imputer (k=5)"]
    assert {r.split for r in rows} == {RECHECK_SPLIT} and all(np.isfinite(r.value) for r in rows)
    header, filled = read_imputed(tmp_path / "imputed.csv")
    observed = ~np.isnan(gappy)
    assert header == ["price", "rate", "count"] and np.isfinite(filled).all()
    np.testing.assert_array_equal(filled[observed], gappy[observed])
    mean, std = np.nanmean(gappy, axis=0), np.nanstd(gappy, axis=0)
    z = (filled - mean) / std  # a standardized prediction left unscaled would sit near -50 for price
    assert (~observed[:, 0]).any() and np.all(np.abs(z[~observed]) < 20)


@pytest.mark.slow
def test_remasker_wine_experiment_trains_and_beats_column_means(tmp_path):
    from sklearn.datasets import load_wine

    config = load_experiment(ROOT / "experiments" / "remasker_wine.py", "steps=100")
    result = train(config, str(tmp_path))
    model, means = run_protocols(config, result.method, jax.device_get(result.state.params), str(tmp_path))[0]
    assert (model.name, means.name) == ("remasker", "column means")
    assert model.value < 0.9 * means.value, (model, means)
    _, filled = read_imputed(tmp_path / "imputed.csv")
    table = masked_table(config.data)
    np.testing.assert_array_equal(filled[table.observed], load_wine().data[table.observed])
    assert np.isfinite(filled).all()
