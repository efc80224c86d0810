import numpy as np
import pandas as pd
import pytest

from mmjax.impute import MaskedImputer
from mmjax.impute.recipe import WIDE_COLUMNS, TableRecipe, table_recipe

# One tiny recipe for every fit here: same shapes and options share one compilation. The periodic
# embedding is off to keep compilation short (tests/test_remasker.py covers it); test-time averaging is on.
TINY = dict(
    width=16,
    depth=1,
    heads=2,
    decoder_width=16,
    decoder_depth=1,
    epochs=60,
    min_steps=0,
    batch_size=64,
    lr=3e-3,
    periodic_features=0,
)


def correlated_table(rows=160, cols=6, seed=0):
    """`[rows, cols]` table driven by one latent factor (+ small noise), and its 30% MCAR copy."""
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=(rows, 1))
    table = factor * rng.uniform(0.8, 1.5, size=(1, cols)) + 0.2 * rng.normal(size=(rows, cols)) + 3.0
    masked = table.copy()
    masked[rng.random(table.shape) < 0.3] = np.nan
    return table, masked


@pytest.fixture(scope="module")
def fitted():
    table, masked = correlated_table()
    imputer = MaskedImputer(seed=0, **TINY).fit(masked)
    return imputer, table, masked


def test_beats_column_means_on_correlated_table(fitted):
    imputer, table, masked = fitted
    removed = np.isnan(masked)
    filled = imputer.transform(masked)
    means = np.where(removed, np.nanmean(masked, axis=0), masked)
    rmse = np.sqrt(np.mean((filled[removed] - table[removed]) ** 2))
    rmse_mean = np.sqrt(np.mean((means[removed] - table[removed]) ** 2))
    assert rmse < 0.6 * rmse_mean, (rmse, rmse_mean)


def test_transform_keeps_observed_cells_bitwise(fitted):
    imputer, _, masked = fitted
    filled = imputer.transform(masked)
    observed = ~np.isnan(masked)
    assert filled.dtype == masked.dtype and not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[observed].view(np.uint64), masked[observed].view(np.uint64))
    # Rows not seen at fit: still only their missing cells change.
    other = correlated_table(seed=1)[1][:40]
    out = imputer.transform(other)
    np.testing.assert_array_equal(out[~np.isnan(other)], other[~np.isnan(other)])


def test_min_steps_lengthens_short_fits(fitted):
    imputer, _, _ = fitted
    assert imputer.epochs_ == 60 and imputer.losses_.shape == (60 * 3,)  # min_steps=0: epochs as given
    imputer = MaskedImputer(epochs=100, min_steps=600, batch_size=64)
    assert imputer.fit_epochs(178, 13) == 200  # 3 batches an epoch: raised to 600 steps
    assert imputer.fit_epochs(442, 10) == 100  # 7 batches an epoch: 700 steps already
    assert imputer.fit_epochs(20, 10) == 600  # one (short) batch an epoch


def test_seed_fixes_the_output(fitted):
    imputer, _, masked = fitted
    first = imputer.transform(masked)
    again = MaskedImputer(seed=0, **TINY).fit_transform(masked)
    np.testing.assert_array_equal(again, first)
    other = MaskedImputer(seed=1, **TINY).fit_transform(masked)
    assert not np.array_equal(other, first)


def test_pandas_in_pandas_out_with_a_categorical_column():
    table, masked = correlated_table(rows=120, cols=4, seed=2)
    colour = np.where(table[:, 0] > 3.0, "red", "blue").astype(object)
    colour[[3, 10, 50]] = None
    frame = pd.DataFrame(masked, columns=list("abcd"), index=np.arange(100, 220))
    frame["colour"] = colour
    out = MaskedImputer(categorical=["colour"], seed=0, **TINY).fit_transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(frame.columns) and (out.index == frame.index).all()
    assert not out.isna().any().any()
    assert set(out["colour"]) == {"red", "blue"}
    observed = frame.notna()
    for name in frame.columns:
        assert (out.loc[observed[name], name] == frame.loc[observed[name], name]).all(), name


def test_get_and_set_params():
    imputer = MaskedImputer(width=32, seed=3)
    params = imputer.get_params()
    assert params["width"] == 32 and params["seed"] == 3 and "epochs" in params
    assert imputer.set_params(seed=4).seed == 4
    assert MaskedImputer(**imputer.get_params()).get_params() == imputer.get_params()
    with pytest.raises(ValueError, match="no parameter 'widht'"):
        imputer.set_params(widht=8)


def test_bad_input_is_refused_naming_the_column(fitted):
    imputer, _, masked = fitted
    frame = pd.DataFrame({"age": [1.0, 2.0, np.nan, 4.0], "empty": [np.nan] * 4})
    with pytest.raises(ValueError, match="column 'empty' has no observed value"):
        MaskedImputer(**TINY).fit(frame)
    frame = pd.DataFrame({"age": [1.0, 2.0, np.nan, 4.0], "city": ["a", "b", "a", None]})
    with pytest.raises(TypeError, match="column 'city' is not numeric.*categorical="):
        MaskedImputer(**TINY).fit(frame)
    frame = pd.DataFrame({"age": [1.0, np.inf, np.nan, 4.0], "h": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(ValueError, match="column 'age' holds inf at row 1"):
        MaskedImputer(**TINY).fit(frame)
    with pytest.raises(ValueError, match=r"categorical=\['town'\]"):
        MaskedImputer(categorical=["town"], **TINY).fit(frame)
    with pytest.raises(RuntimeError, match="transform was called before fit"):
        MaskedImputer(**TINY).transform(masked)
    with pytest.raises(ValueError, match="X has 5 columns; the imputer was fitted on 6"):
        imputer.transform(masked[:, :5])
    with pytest.raises(ValueError, match="column 3 holds inf"):
        imputer.transform(np.where(np.arange(6) == 3, np.inf, masked))
    with pytest.raises(TypeError, match="must be a NumPy array"):
        imputer.transform(pd.DataFrame(masked))


def test_the_recipe_scales_with_the_table():
    narrow = table_recipe(178, 13)
    assert narrow == TableRecipe(width=32, decoder_width=32, remask_ratio=0.3, batch_size=64, epochs=100, min_steps=600)
    wide = table_recipe(192, 60)
    assert (wide.width, wide.decoder_width, wide.remask_ratio) == (64, 64, 0.5)
    assert (wide.batch_size, wide.min_steps) == (64, 1200)
    assert table_recipe(178, WIDE_COLUMNS - 1).width == 32 and table_recipe(178, WIDE_COLUMNS).width == 64
    assert table_recipe(1797, 61).batch_size == 128 and table_recipe(1797, 61).fit_epochs(1797) == 100
    # A user's value wins over the rule; the others still follow it.
    given = MaskedImputer(width=16, remask_ratio=0.4, epochs=7).recipe(192, 60)
    assert (given.width, given.remask_ratio, given.epochs) == (16, 0.4, 7)
    assert (given.decoder_width, given.batch_size) == (64, 64)


def test_a_wide_fit_uses_and_shows_the_wide_recipe():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(40, 1)) + 0.3 * rng.normal(size=(40, WIDE_COLUMNS + 2))
    table[rng.random(table.shape) < 0.2] = np.nan
    tiny = dict(depth=1, decoder_depth=1, heads=2, epochs=2, min_steps=0, periodic_features=0, tta_passes=1)
    imputer = MaskedImputer(**tiny).fit(table)
    assert (imputer.width_, imputer.remask_ratio_, imputer.batch_size_, imputer.epochs_) == (64, 0.5, 64, 2)
    assert imputer.method_.options.width == 64 and imputer.losses_.shape == (2,)
    assert imputer.get_params()["width"] is None  # the constructor's value is left as given


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"width": 0}, "MaskedImputer width=0: expected an int >= 1"),
        ({"remask_ratio": 1.5}, r"MaskedImputer remask_ratio=1.5: expected a number in \(0, 1\)"),
        ({"batch_size": 8.5}, "MaskedImputer batch_size=8.5: expected an int >= 1"),
        ({"min_steps": -1}, "MaskedImputer min_steps=-1: expected an int >= 0"),
    ],
)
def test_a_bad_recipe_value_is_named(bad, message):
    with pytest.raises(ValueError, match=message):
        MaskedImputer(**bad).fit(correlated_table(rows=20, cols=3)[1])
