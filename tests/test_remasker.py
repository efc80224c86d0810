import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mmjax.masking.tables import RemaskerMasks
from mmjax.methods import build_method
from mmjax.methods.remasker import ReMasker, ReMaskerOptions, default_config, remasker_loss
from mmjax.models.table_mae import visible_first

TINY = dict(width=16, depth=1, heads=2, mlp_dim=32)
TINY.update(decoder_width=16, decoder_depth=1, decoder_heads=2, decoder_mlp_dim=32)


def _masks(missing, remasked):
    missing, remasked = jnp.asarray(missing), jnp.asarray(remasked)
    hidden = missing | remasked
    return RemaskerMasks(missing=missing, remasked=remasked, hidden=hidden, visible=~hidden)


def test_loss_counts_only_remasked_observed_cells():
    target = jnp.asarray([[1.0, 2.0, 3.0, 4.0]])
    masks = _masks([[True, False, False, False]], [[False, True, False, False]])
    pred = jnp.zeros((1, 4))
    base = remasker_loss(pred, target, masks, visible_weight=0.0)
    np.testing.assert_allclose(base, 4.0)  # (0 - 2)^2 on the one re-masked cell
    # Naturally missing (cell 0) and visible (cells 2, 3) predictions do not count.
    for cell in (0, 2, 3):
        assert remasker_loss(pred.at[0, cell].add(7.0), target, masks, visible_weight=0.0) == base
    assert remasker_loss(pred.at[0, 1].add(1.0), target, masks, visible_weight=0.0) != base
    # A NaN target at a missing cell does not leak into the loss.
    assert remasker_loss(pred, target.at[0, 0].set(jnp.nan), masks, visible_weight=0.0) == base
    # The optional visible term counts the visible cells, still never the missing one.
    with_visible = remasker_loss(pred, target, masks, visible_weight=0.5)
    np.testing.assert_allclose(with_visible, 4.0 + 0.5 * (9.0 + 16.0) / 2)
    assert remasker_loss(pred.at[0, 0].add(7.0), target, masks, visible_weight=0.5) == with_visible


def test_the_default_loss_adds_the_visible_cells_at_weight_one_as_the_reference():
    assert default_config().remasker.visible_loss_weight == 1.0
    method = ReMasker(ReMaskerOptions(num_columns=5, **TINY))
    values = jax.random.normal(jax.random.key(3), (4, 5))
    params = method.init(jax.random.key(4), {"values": values})
    loss, _ = method.loss(params, {"values": values}, jax.random.key(5))
    masks = method.make_masks(jax.random.key(5), jnp.ones((4, 5), bool))
    error = np.square(np.asarray(method.predict(params, values, masks.hidden)) - np.asarray(values))
    remasked, visible = np.asarray(masks.remasked), np.asarray(masks.visible)
    assert remasked.any() and visible.any()
    np.testing.assert_allclose(float(loss), error[remasked].mean() + error[visible].mean(), rtol=1e-5)


def test_loss_gradient_is_zero_at_missing_cells():
    method = ReMasker(ReMaskerOptions(num_columns=6, **TINY))
    values = np.array(jax.random.normal(jax.random.key(0), (8, 6)))
    values[:, 2] = np.nan
    values[3, 4] = np.nan
    observed = ~np.isnan(values)
    masks = method.make_masks(jax.random.key(2), jnp.asarray(observed))
    pred = jax.random.normal(jax.random.key(1), values.shape)
    grad = jax.grad(lambda p: remasker_loss(p, jnp.asarray(values), masks, visible_weight=0.0))(pred)
    assert np.all(np.asarray(grad)[~observed] == 0)
    np.testing.assert_array_equal(np.asarray(grad) != 0, np.asarray(masks.remasked))


@pytest.fixture(scope="module")
def tiny():
    method = ReMasker(ReMaskerOptions(num_columns=5, **TINY))
    values = jax.random.normal(jax.random.key(3), (4, 5))
    return method, method.init(jax.random.key(4), {"values": values}), values


def test_encoder_never_sees_hidden_values(tiny):
    method, params, values = tiny
    hidden = jnp.asarray([[1, 0, 0, 1, 0], [0, 0, 0, 0, 1], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], bool)
    pred = method.predict(params, values, hidden)
    np.testing.assert_array_equal(method.predict(params, jnp.where(hidden, 50.0, values), hidden), pred)
    changed = method.predict(params, values.at[0, 1].add(3.0), hidden)  # a visible cell of row 0
    assert not np.allclose(changed[0], pred[0])
    np.testing.assert_array_equal(changed[1:], pred[1:])


def test_impute_keeps_observed_cells_and_fills_missing(tiny):
    method, params, values = tiny
    values = np.array(values, np.float32)
    values[0, 1] = values[2, 3] = np.nan
    out = np.asarray(method.impute(params, values, ~np.isnan(values)))
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[~np.isnan(values)], values[~np.isnan(values)])


def test_visible_first_orders_and_counts():
    hidden = jnp.asarray([[True, False, True, False]])
    order, restore, count = visible_first(hidden)
    np.testing.assert_array_equal(order, [[1, 3, 0, 2]])
    np.testing.assert_array_equal(jnp.take_along_axis(order, restore, 1), [[0, 1, 2, 3]])
    np.testing.assert_array_equal(count, [2])


def test_groups_remask_one_hot_columns_together():
    # columns 0 and 1 are numeric; 2..4 one categorical variable's one-hot columns.
    method = ReMasker(ReMaskerOptions(num_columns=5, groups=(0, 1, 2, 2, 2), remask_ratio=0.5, **TINY))
    masks = method.make_masks(jax.random.key(7), jnp.ones((500, 5), bool))
    remasked = np.asarray(masks.remasked)
    assert (remasked[:, 2:] == remasked[:, 2:3]).all()
    # Each row re-masks round(0.5 * 3 groups) = 2 groups, counting the one-hot block once.
    np.testing.assert_array_equal(remasked[:, :3].sum(1), 2)


def test_registered_and_config_errors_name_the_field():
    config = default_config()
    config.remasker.num_columns = 7
    assert isinstance(build_method(config), ReMasker)
    with pytest.raises(ValueError, match="remasker.num_columns must be >= 1"):
        build_method(default_config())
    bad = ml_collections.ConfigDict({"method": "remasker", "remasker": {"num_columns": 3, "remask_ratio": 1.0}})
    with pytest.raises(ValueError, match=r"remasker.remask_ratio must be in \(0, 1\), got 1.0"):
        build_method(bad)
    bad = ml_collections.ConfigDict({"method": "remasker", "remasker": {"num_columns": 3, "widht": 8}})
    with pytest.raises(ValueError, match="remasker.widht"):
        build_method(bad)
    with pytest.raises(ValueError, match="remasker.groups"):
        ReMaskerOptions(num_columns=3, groups=(0, 2, 2))
    method = ReMasker(ReMaskerOptions(num_columns=3, **TINY))
    with pytest.raises(ValueError, match=r"must be \[B, 3\]"):
        method.init(jax.random.key(0), {"values": jnp.zeros((2, 4))})


def test_periodic_embedding_shapes_and_hidden_cells():
    method = ReMasker(ReMaskerOptions(num_columns=5, periodic_features=3, **TINY))
    values = jax.random.normal(jax.random.key(5), (4, 5))
    params = method.init(jax.random.key(6), {"values": values})
    assert params["periodic_frequencies"].shape == (5, 3)
    assert params["periodic_kernel"].shape == (5, 6, 16) and params["periodic_bias"].shape == (5, 16)
    hidden = jnp.asarray([[1, 0, 0, 1, 0]] * 4, bool)
    _, state = method.model.apply(
        {"params": params}, values, hidden, capture_intermediates=lambda _, name: name == "embed"
    )
    assert state["intermediates"]["embed"][0].shape == (4, 5, 16)
    pred = method.predict(params, values, hidden)
    assert pred.shape == (4, 5)
    # The periodic path still never sees a hidden value.
    np.testing.assert_array_equal(method.predict(params, jnp.where(hidden, 9.0, values), hidden), pred)


def test_averaged_impute_keeps_observed_cells_and_one_pass_is_impute(tiny):
    method, params, values = tiny
    values = np.array(values, np.float32)
    values[0, 1] = values[2, 3] = values[3, 0] = np.nan
    observed = ~np.isnan(values)
    plain = np.asarray(method.impute(params, values, observed))
    key = jax.random.key(8)
    np.testing.assert_array_equal(np.asarray(method.impute_averaged(params, values, observed, key, 1, 0.5)), plain)
    out = np.asarray(method.impute_averaged(params, values, observed, key, 6, 0.5))
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[observed], values[observed])
    assert not np.allclose(out[~observed], plain[~observed])  # the extra views change the missing cells


def test_attention_impl_reaches_the_model_and_pallas_gives_the_xla_loss():
    xla = ReMasker(ReMaskerOptions(num_columns=5, **TINY))
    config = default_config()
    config.remasker.update(num_columns=5, attention_impl="pallas", **TINY)  # Pallas interpret mode on CPU
    pallas = build_method(config)
    assert (xla.model.transformer.attention_impl, pallas.model.transformer.attention_impl) == ("xla", "pallas")
    values = np.array(jax.random.normal(jax.random.key(0), (4, 5)))
    values[1, 2] = values[3, 0] = np.nan  # padded keys: rows see different numbers of cells
    batch = {"values": jnp.asarray(values)}
    params = jax.jit(xla.init)(jax.random.key(1), batch)
    rng = jax.random.key(2)
    assert "pallas_call" in str(jax.make_jaxpr(pallas.loss)(params, batch, rng))
    want = jax.jit(xla.loss)(params, batch, rng)[0]
    got = jax.jit(pallas.loss)(params, batch, rng)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    config.remasker.attention_impl = "flash"
    with pytest.raises(ValueError, match=r"remasker\.attention_impl='flash': expected one of") as err:
        build_method(config)
    assert "\n" not in str(err.value)
