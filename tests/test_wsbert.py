"""WSBERT's loss-weighted sampling (`mlm.selection=loss_weighted`): a running per-token loss picks what is masked."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmjax.masking.text import token_weighted_mask
from mmjax.methods.loss_weighted import LOSS_TABLE
from mmjax.methods.registry import build_method
from tests.test_mlm import batch, tiny_config, tokenizer_file  # noqa: F401  (fixtures)


def test_token_weights_set_the_choice_probabilities():
    ids = jnp.tile(jnp.arange(8), (400, 1))  # every row holds tokens 0..7 once
    candidates = jnp.ones_like(ids, bool)
    log_w = jnp.log(jnp.asarray([1, 1, 1, 1, 1, 1, 1, 20.0]))
    chosen = np.asarray(token_weighted_mask(jax.random.key(0), ids, candidates, log_w, 0.125).mask)
    assert (chosen.sum(1) == 1).all()  # BERT's exact count: 1 of 8
    # One draw per row, token 7 weighted 20 of 27: chosen 74% of the time (4 standard errors).
    share = chosen[:, 7].mean()
    assert abs(share - 20 / 27) < 4 * np.sqrt(20 / 27 * 7 / 27 / 400)
    uniform = np.asarray(token_weighted_mask(jax.random.key(0), ids, candidates, jnp.zeros(8), 0.125).mask)
    assert abs(uniform[:, 7].mean() - 1 / 8) < 4 * np.sqrt(1 / 8 * 7 / 8 / 400)


def wsbert_config(tokenizer: str, momentum: float):
    config = tiny_config(tokenizer, selection="loss_weighted")
    config.wsbert.loss_momentum = momentum
    return config


def test_the_table_follows_the_training_loss_of_the_chosen_tokens(tokenizer_file, batch):  # noqa: F811
    method = build_method(wsbert_config(tokenizer_file, 0.5))
    params = jax.jit(method.init)(jax.random.key(0), batch)
    assert params[LOSS_TABLE].shape == (method.vocab_size,) and np.all(np.asarray(params[LOSS_TABLE]) == 1)
    assert not any(jax.tree.leaves(method.trainable(params)[LOSS_TABLE]))
    loss, metrics = method.loss(params, batch, jax.random.key(3))
    stats = metrics["state_inputs"]["wsbert"]  # the term's own, for its after_step
    # The sums are the chosen positions' cross-entropies by target id: their total is loss * count.
    np.testing.assert_allclose(float(stats["sum"].sum()), float(loss) * float(stats["count"].sum()), rtol=1e-4)
    new = method.after_step(params, {"wsbert": stats}, jnp.int32(0))[LOSS_TABLE]
    seen = np.asarray(stats["count"]) > 0
    mean = np.asarray(stats["sum"])[seen] / np.asarray(stats["count"])[seen]
    np.testing.assert_allclose(np.asarray(new)[seen], 0.5 + 0.5 * mean, rtol=1e-5)
    assert np.all(np.asarray(new)[~seen] == 1)


def test_high_loss_tokens_are_masked_more_often(tokenizer_file, batch):  # noqa: F811
    method = build_method(tiny_config(tokenizer_file, selection="loss_weighted", weight_alpha=1.0))
    ids = np.asarray(batch["input_ids"])
    real = ids[np.asarray(batch["segment_ids"]) > 0]
    hard = int(np.bincount(real).argmax())  # the commonest token of these rows
    table = jnp.ones((method.vocab_size,)).at[hard].set(30.0)
    picks, base = 0, 0
    for i in range(20):
        key = jax.random.key(i)
        picks += int(
            (
                np.asarray(method.corrupt(key, batch["input_ids"], batch["segment_ids"], table).mask) & (ids == hard)
            ).sum()
        )
        base += int(
            (np.asarray(method.corrupt(key, batch["input_ids"], batch["segment_ids"]).mask) & (ids == hard)).sum()
        )
    assert picks > 2 * base


def test_training_updates_the_table_and_a_bad_momentum_is_named(tokenizer_file, batch):  # noqa: F811
    method = build_method(tiny_config(tokenizer_file, selection="loss_weighted"))
    params = jax.jit(method.init)(jax.random.key(0), batch)
    opt = optax.adam(1e-2)
    state = opt.init(params)

    @jax.jit
    def step(params, state, key):
        (_, metrics), grads = jax.value_and_grad(method.loss, has_aux=True)(params, batch, key)
        updates, state = opt.update(grads, state, params)
        new = optax.apply_updates(params, updates)
        return method.after_step(new, metrics["state_inputs"], jnp.int32(0)), state

    for i in range(3):
        params, state = step(params, state, jax.random.key(i))
    assert np.any(np.asarray(params[LOSS_TABLE]) != 1)
    with pytest.raises(ValueError, match="wsbert.loss_momentum"):
        build_method(wsbert_config(tokenizer_file, 1.0))
