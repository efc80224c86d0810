"""MLM vs CLM (`mlm.objective`): causal next-token training of the same BERT encoder, and CLM then MLM."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmjax.methods.causal_lm import STEPS_SEEN, causal_loss
from mmjax.methods.registry import build_method
from mmjax.models.bert import BertConfig, BertMLM
from tests.test_mlm import batch, tiny_config, tokenizer_file  # noqa: F401  (fixtures)


def test_causal_attention_never_looks_ahead():
    model = BertMLM(BertConfig(vocab_size=40, width=16, depth=2, heads=2, mlp_dim=32, max_len=10, dropout=0.0))
    ids = jax.random.randint(jax.random.key(0), (1, 8), 0, 40)
    params = model.init(jax.random.key(1), ids)
    later = ids.at[0, 6].set((ids[0, 6] + 1) % 40)
    a = model.apply(params, ids, causal=True, method=BertMLM.encode)
    b = model.apply(params, later, causal=True, method=BertMLM.encode)
    np.testing.assert_allclose(np.asarray(a[0, :6]), np.asarray(b[0, :6]), rtol=1e-6, atol=1e-6)
    assert np.abs(np.asarray(a[0, 6:]) - np.asarray(b[0, 6:])).max() > 1e-4
    both = model.apply(params, ids, method=BertMLM.encode)
    moved = model.apply(params, later, method=BertMLM.encode)
    assert np.abs(np.asarray(both[0, :6]) - np.asarray(moved[0, :6])).max() > 1e-4  # bidirectional does look


def test_the_causal_loss_is_next_token_cross_entropy_within_segments(tokenizer_file, batch):  # noqa: F811
    method = build_method(tiny_config(tokenizer_file, objective="clm"))
    params = jax.jit(method.init)(jax.random.key(0), batch)
    loss, metrics = method.loss(params, batch, jax.random.key(1), train=False)
    hidden = BertMLM(method.model_config).apply(
        {"params": params},
        batch["input_ids"],
        batch["segment_ids"],
        batch["positions"],
        causal=True,
        method=BertMLM.encode,
    )
    logits = BertMLM(method.model_config).apply({"params": params}, hidden, method=BertMLM.logits)
    ids, seg = np.asarray(batch["input_ids"]), np.asarray(batch["segment_ids"])
    ce = np.asarray(optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], ids[:, 1:]))
    keep = (seg[:, 1:] == seg[:, :-1]) & (seg[:, 1:] > 0)
    assert (~keep).any() and keep.any()  # packed rows: some next tokens start a new document or are padding
    np.testing.assert_allclose(float(loss), ce[keep].mean(), rtol=1e-5)
    assert float(metrics["mask_rate"]) == 0


def test_clm_then_mlm_switches_at_its_share_of_the_steps(tokenizer_file, batch):  # noqa: F811
    config = tiny_config(tokenizer_file, objective="clm_then_mlm", clm_share=0.25)
    config.train.steps = 8
    method = build_method(config)
    params = jax.jit(method.init)(jax.random.key(0), batch)
    assert float(params[STEPS_SEEN]) == 0 and not method.trainable(params)[STEPS_SEEN]
    key = jax.random.key(2)
    early, m_early = method.loss(params, batch, key, train=False)
    np.testing.assert_allclose(float(early), float(causal_loss(method, params, batch, key, False)[0]), rtol=1e-6)
    assert float(m_early["clm_phase"]) == 1
    for _ in range(2):
        params = method.after_step(params, None, jnp.int32(0))
    late, m_late = method.loss(params, batch, key, train=False)  # 2 of 8 steps seen: past 0.25
    np.testing.assert_allclose(float(late), float(method.masked_loss(params, batch, key, False)[0]), rtol=1e-6)
    assert float(m_late["clm_phase"]) == 0


def test_clm_training_lowers_the_loss(tokenizer_file, batch):  # noqa: F811
    method = build_method(tiny_config(tokenizer_file, objective="clm"))
    params = jax.jit(method.init)(jax.random.key(0), batch)
    opt = optax.adam(1e-2)
    state = opt.init(params)

    @jax.jit
    def step(params, state, key):
        loss, grads = jax.value_and_grad(lambda p: method.loss(p, batch, key)[0])(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    losses = []
    for i in range(25):
        params, state, value = step(params, state, jax.random.key(i))
        losses.append(float(value))
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_bad_objectives_are_named(tokenizer_file):  # noqa: F811
    with pytest.raises(ValueError, match="mlm.objective='prefix': expected one of"):
        build_method(tiny_config(tokenizer_file, objective="prefix"))
    with pytest.raises(ValueError, match="loss_weighted"):
        build_method(tiny_config(tokenizer_file, objective="clm", selection="loss_weighted"))
    config = tiny_config(tokenizer_file, objective="clm")
    config.model.decoder_depth = 1
    with pytest.raises(ValueError, match="model.decoder_depth=0"):
        build_method(config)
