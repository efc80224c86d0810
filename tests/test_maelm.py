"""MAE-LM (`model.decoder_depth` > 0): the encoder never sees a [MASK] token; a shallow decoder predicts."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmjax.export.hf_bert import hf_bert_config, to_hf_bert
from mmjax.methods.registry import build_method
from mmjax.models.bert import BertConfig, BertMLM
from tests.test_mlm import batch, tiny_config, tokenizer_file  # noqa: F401  (fixtures)

CFG = BertConfig(vocab_size=50, width=16, depth=2, heads=2, mlp_dim=32, max_len=12, dropout=0.0, decoder_depth=1)


def random_params(model: BertMLM, ids: jax.Array) -> dict:
    params = model.init(jax.random.key(0), ids)["params"]
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    return jax.tree.unflatten(tree, [0.3 * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)])


def test_the_encoder_output_is_that_of_the_real_tokens_alone():
    model = BertMLM(CFG)
    ids = jax.random.randint(jax.random.key(2), (2, 10), 0, 50)
    segments = jnp.asarray([[1] * 6 + [2] * 4, [1] * 8 + [0] * 2])  # two packed segments; padding
    exclude = jnp.zeros((2, 10), bool).at[0, jnp.asarray([1, 4, 7])].set(True).at[1, jnp.asarray([0, 5])].set(True)
    params = random_params(model, ids)
    out = model.apply({"params": params}, ids, segments, exclude=exclude, method=BertMLM.encode)
    for b in range(2):
        keep = np.flatnonzero(~np.asarray(exclude[b]))
        alone = model.apply(
            {"params": params},
            ids[b : b + 1, keep],
            segments[b : b + 1, keep],
            jnp.asarray(keep)[None],  # the real tokens at their own positions
            method=BertMLM.encode,
        )
        real = np.asarray(segments[b, keep]) > 0
        np.testing.assert_allclose(np.asarray(out[b, keep])[real], np.asarray(alone[0])[real], rtol=1e-5, atol=1e-5)
    # Without `exclude` the [MASK]ed ids do reach the real tokens.
    plain = model.apply({"params": params}, ids, segments, method=BertMLM.encode)
    keep0 = np.flatnonzero(~np.asarray(exclude[0]))
    assert np.abs(np.asarray(plain[0, keep0]) - np.asarray(out[0, keep0])).max() > 1e-3


def test_the_decoder_sees_the_excluded_positions_re_embedded():
    model = BertMLM(CFG)
    ids = jax.random.randint(jax.random.key(3), (1, 8), 0, 50)
    exclude = jnp.zeros((1, 8), bool).at[0, 3].set(True)
    params = random_params(model, ids)
    logits = model.apply({"params": params}, ids, exclude=exclude)
    other = model.apply({"params": params}, ids.at[0, 3].set((ids[0, 3] + 1) % 50), exclude=exclude)
    # The excluded id enters the decoder only: every position's logits move, through the decoder's attention.
    assert np.abs(np.asarray(logits) - np.asarray(other)).max() > 1e-3
    hidden = model.apply({"params": params}, ids, exclude=exclude, method=BertMLM.encode)
    moved = model.apply({"params": params}, ids.at[0, 3].set(0), exclude=exclude, method=BertMLM.encode)
    np.testing.assert_allclose(np.asarray(hidden[0, :3]), np.asarray(moved[0, :3]), rtol=1e-6, atol=1e-6)


def test_mae_lm_trains_and_excludes_only_the_mask_replaced_positions(tokenizer_file, batch):  # noqa: F811
    config = tiny_config(tokenizer_file)
    config.model.decoder_depth = 1
    method = build_method(config)
    params = jax.jit(method.init)(jax.random.key(0), batch)
    assert "decoder_block_0" in params
    rng = jax.random.key(5)
    c = method.corrupt(jax.random.split(rng)[0], batch["input_ids"], batch["segment_ids"])
    assert np.any(np.asarray(c.action) == 2) or np.any(np.asarray(c.action) == 3)  # some chosen tokens stay real
    loss, _ = method.loss(params, batch, rng, train=False)
    logits = BertMLM(method.model_config).apply(
        {"params": params}, c.input_ids, batch["segment_ids"], batch["positions"], exclude=c.action == 1
    )
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["input_ids"])
    np.testing.assert_allclose(float(loss), float(ce[c.mask].mean()), rtol=1e-5)
    opt = optax.adam(1e-2)
    state = opt.init(params)

    @jax.jit
    def step(params, state, key):
        loss, grads = jax.value_and_grad(lambda p: method.loss(p, batch, key)[0])(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    losses = []
    for i in range(30):
        params, state, value = step(params, state, jax.random.key(i))
        losses.append(float(value))
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_hf_export_refuses_a_decoder_and_a_bad_depth_is_named():
    with pytest.raises(ValueError, match="model.decoder_depth=1"):
        hf_bert_config(CFG)
    with pytest.raises(ValueError, match="model.decoder_depth=1"):
        to_hf_bert({}, CFG)
    with pytest.raises(ValueError, match="model.decoder_depth must be >= 0"):
        BertConfig(decoder_depth=-1)
