"""TimesBERT: functional-token layout, masking across variates, the variate swap, training, config errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmjax.config import ConfigError
from mmjax.methods.registry import build_method
from mmjax.methods.timesbert import swap_variates
from mmjax.models.timesbert import TimesBERTModel, sequence_length, token_positions
from tests.helpers import load_experiment

V, P, PATCH = 3, 4, 4  # variates, patches per variate, steps per patch


def tiny_config(**timesbert):
    """A 16-step window of 3 variates from two bundled tables; a 1-block, 16-wide model."""
    config = load_experiment("timesbert_series")
    config.model.update(width=16, depth=1, heads=2, mlp_dim=32)
    config.timesbert.update(patch_len=PATCH, max_variates=4, **timesbert)
    config.data.update(sources=("macrodata", "uschange"), window=P * PATCH, variates=V)
    return config


@pytest.fixture(scope="module")
def tiny():
    method = build_method(tiny_config())
    params = jax.jit(method.init)(jax.random.key(1), {"series": jnp.zeros((1, P * PATCH, V))})
    return method, params


def _batch(batch_size=8, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(P * PATCH)[None, :, None]
    series = np.sin(t / 3.0 + rng.uniform(0, 6, (batch_size, 1, V))) + 0.1 * rng.normal(size=(batch_size, 1, V))
    return {"series": jnp.asarray(series, jnp.float32), "domain": jnp.asarray(np.arange(batch_size) % 2, jnp.int32)}


def test_functional_tokens_sit_where_the_layout_says(tiny):
    method, params = tiny
    model, p = method.model, params
    patches = jax.random.normal(jax.random.key(2), (2, V, P, PATCH))
    hidden = jax.random.uniform(jax.random.key(3), (2, V * P)) < 0.5
    seq = model.apply({"params": p}, patches, hidden, method=TimesBERTModel.sequence)
    assert seq.shape == (2, sequence_length(V, P), 16) == (2, 1 + V * (P + 1), 16)
    dom, var, patch_ids = token_positions(V, P)
    pos = p["pos_embedding"]
    np.testing.assert_allclose(seq[:, dom], jnp.broadcast_to(p["dom_token"] + pos[dom], (2, 16)), atol=1e-6)
    for v in range(V):
        np.testing.assert_allclose(seq[:, var[v]], jnp.broadcast_to(p["var_token"] + pos[var[v]], (2, 16)), atol=1e-6)
        embedded = patches[:, v] @ p["embed"]["kernel"] + p["embed"]["bias"]  # [2, P, D]
        for j in range(P):
            is_hidden = hidden.reshape(2, V, P)[:, v, j][:, None]
            want = jnp.where(is_hidden, p["mask_token"], embedded[:, j]) + pos[patch_ids[v, j]]
            np.testing.assert_allclose(seq[:, patch_ids[v, j]], want, atol=1e-5)
    # The roles `encode` returns are the encoder's rows at those positions.
    out = model.apply({"params": p}, patches, hidden, method=lambda m, x, h: m.encoder(m.sequence(x, h))[0])
    enc = model.apply({"params": p}, patches, hidden, method=TimesBERTModel.encode)
    np.testing.assert_allclose(enc["dom"], out[:, dom], atol=1e-6)
    np.testing.assert_allclose(enc["var"], out[:, var], atol=1e-6)
    np.testing.assert_allclose(enc["patches"], out[:, patch_ids], atol=1e-6)


def test_masks_hide_patches_across_variates_unless_shared(tiny):
    method, _ = tiny
    hidden = np.asarray(method.make_mask(jax.random.key(4), 16, V)).reshape(16, V, P)
    n = V * P
    assert (hidden.reshape(16, -1).sum(1) == n - int(n * (1 - method.mask_ratio))).all()
    same_in_every_variate = (hidden == hidden[:, :1]).all(axis=(1, 2))
    assert not same_in_every_variate.all(), "the default mask hides the same time slots in every variate"
    assert hidden.any(axis=(0, 2)).all() and hidden.any(axis=(0, 1)).all()  # every variate, every time slot
    config = tiny_config()
    config.mask.kind = "variate_patch"
    config.mask.variate_patch.shared = True
    shared = np.asarray(build_method(config).make_mask(jax.random.key(4), 16, V)).reshape(16, V, P)
    assert (shared == shared[:, :1]).all()


def test_swap_labels_mark_exactly_the_variates_taken_from_another_sample():
    batch, length = 6, 5
    ids = 100 * np.arange(batch)[:, None] + np.arange(V)[None]  # sample b, variate v -> 100 b + v
    series = jnp.asarray(np.broadcast_to(ids[:, None, :], (batch, length, V)), jnp.float32)
    out, swapped = swap_variates(jax.random.key(5), series, 0.5)
    out, swapped = np.asarray(out), np.asarray(swapped)
    assert 0 < swapped.sum() < swapped.size
    for b in range(batch):
        for v in range(V):
            column = out[b, :, v]
            assert (column == column[0]).all()  # one whole donor variate, not a mix
            source_sample = int(column[0]) // 100
            if swapped[b, v]:
                assert source_sample != b and int(column[0]) in ids
            else:
                assert column[0] == ids[b, v]
    none, flags = swap_variates(jax.random.key(5), series, 0.0)
    np.testing.assert_array_equal(none, series)
    assert not np.asarray(flags).any()
    with pytest.raises(ValueError, match="at least 2 samples"):
        swap_variates(jax.random.key(5), series[:1], 0.5)


def test_heads_follow_the_objectives():
    method = build_method(tiny_config())
    assert method.discriminates_variates and method.num_domains == 2
    off = build_method(tiny_config(variate_weight=0.0, domain_weight=0.0))
    assert not off.discriminates_variates and off.num_domains == 0
    config = tiny_config()
    config.data.update(sources=("sunspots",), variates=1)
    uni = build_method(config)
    assert not uni.discriminates_variates and uni.num_domains == 0
    params = jax.eval_shape(uni.init, jax.random.key(0), {"series": jnp.zeros((1, P * PATCH, 1))})
    assert "var_head" not in params and "dom_head" not in params and "patch_head" in params


def test_a_few_steps_reduce_every_loss(tiny):
    method, params = tiny
    batch = _batch()
    opt = optax.adam(3e-3)

    @jax.jit
    def step(p, state, key):
        (_, metrics), grads = jax.value_and_grad(method.loss, has_aux=True)(p, batch, key)
        updates, state = opt.update(grads, state, p)
        return optax.apply_updates(p, updates), state, metrics

    key = jax.random.key(6)
    _, first = method.loss(params, batch, key)
    p, state = params, opt.init(params)
    for i in range(40):
        p, state, _ = step(p, state, jax.random.fold_in(key, i))
    _, last = method.loss(p, batch, key)
    for name in ("loss", "mpm_loss", "variate_loss", "domain_loss"):
        assert float(last[name]) < float(first[name]), (name, float(first[name]), float(last[name]))
    assert np.isfinite(float(last["loss"]))


def test_reconstruct_ignores_hidden_values_and_features_have_their_shapes(tiny):
    method, params = tiny
    series = _batch(4)["series"]
    hidden = method.make_mask(jax.random.key(7), 4, V)
    steps = jnp.transpose(jnp.repeat(hidden.reshape(4, V, P), PATCH, axis=2), (0, 2, 1))
    poisoned = jnp.where(steps, 1e6, series)
    np.testing.assert_allclose(
        method.reconstruct(params, poisoned, hidden), method.reconstruct(params, series, hidden), atol=1e-4
    )
    assert method.features(params, series).shape == (4, V * 16)
    assert method.features(params, series, "dom").shape == (4, 16)
    assert method.features(params, series, "var").shape == (4, V * 16)
    assert method.features(params, series, "tokens").shape == (4, V, P, 16)
    # A univariate window through the same model (the evaluation's windows).
    assert method.features(params, series[..., :1]).shape == (4, 16)
    with pytest.raises(ValueError, match="pool must be one of"):
        method.features(params, series, "cls")


@pytest.mark.parametrize(
    "edit, error, words",
    [
        (lambda c: c.data.update(window=18), ConfigError, ["data.window=18", "timesbert.patch_len=4"]),
        (lambda c: c.data.update(variates=5), ConfigError, ["data.variates=5", "timesbert.max_variates=4"]),
        (lambda c: c.timesbert.update(mask_ratio=1.5), ConfigError, ["mask_ratio", "1.5"]),
        (lambda c: c.timesbert.update(swap_ratio=-0.1), ConfigError, ["swap_ratio", "-0.1"]),
        (lambda c: c.timesbert.update(domain_weight=-1.0), ConfigError, ["domain_weight", "-1.0"]),
        (lambda c: c.mask.update(kind="tube"), ConfigError, ["mask.kind", "tube"]),
    ],
)
def test_config_errors_are_one_line_and_name_the_field(edit, error, words):
    config = tiny_config()
    edit(config)
    with pytest.raises(error) as info:
        build_method(config)
    message = str(info.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, (word, message)
