"""The `tables` data kind and ReMasker through the trainer (`experiments/remasker_wine.py`)."""

import numpy as np
import pytest

from mmjax.config import load_experiment
from mmjax.data.tables import masked_table, remove_cells, tables_config
from mmjax.evaluate import evaluate_pretraining
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


def test_kind_batches_feed_remasker_and_the_report_keeps_observed_cells(tmp_path):
    import jax

    from mmjax.data.kinds import data_kind
    from mmjax.methods import build_method

    config = load_experiment(ROOT / "experiments" / "remasker_wine.py", "steps=10")
    kind = data_kind(config.data)
    batch = next(iter(kind.train_dataset(config.data, 8, 0, 0, 1)))
    spec = kind.batch_spec(config.data, 8)
    assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {k: (s.shape, s.dtype) for k, s in spec.items()}
    assert 0.2 < 1 - batch["observed"].mean() < 0.45  # about 30% of the cells are missing
    method = build_method(config)
    params = method.init(jax.random.key(0), kind.example_batch(config.data, 8))
    assert np.isfinite(float(method.loss(params, batch, jax.random.key(1))[0]))
    report = evaluate_pretraining(config, method, params, str(tmp_path))
    assert report["missing"] == int((~masked_table(config.data).observed).sum()) and report["mean_rmse"] > 0.5
    filled = np.loadtxt(tmp_path / "imputed.csv", delimiter=",", skiprows=1)
    table = masked_table(config.data)
    np.testing.assert_allclose(filled[table.observed], table.truth[table.observed], rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_remasker_wine_experiment_trains_and_beats_column_means(tmp_path):
    config = load_experiment(ROOT / "experiments" / "remasker_wine.py", "steps=100")
    result = train(config, str(tmp_path))
    report = evaluate_pretraining(config, result.method, result.state.params, str(tmp_path))
    assert report["rmse"] < 0.9 * report["mean_rmse"], report
    filled = np.loadtxt(tmp_path / "imputed.csv", delimiter=",", skiprows=1)
    table = masked_table(config.data)
    observed = table.observed
    np.testing.assert_allclose(filled[observed], table.truth[observed], rtol=1e-6, atol=1e-6)
    assert np.isfinite(filled).all()
