"""Parity with HF `BertForMaskedLM`: random tiny weights converted to mmjax give the same logits and loss."""

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmjax.export.hf_bert import bert_config_from_hf, convert_hf_bert, to_hf_bert
from mmjax.export.plan import CheckpointMismatchError
from mmjax.models.bert import BertMLM

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

B, L, V = 3, 12, 60


@pytest.fixture(scope="module")
def hf_model():
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=V,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=16,
        type_vocab_size=2,
    )
    model = transformers.BertForMaskedLM(config).eval()
    with torch.no_grad():  # non-trivial LayerNorm parameters and biases, so a mixed-up key shows
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def _inputs():
    rng = np.random.default_rng(1)
    ids = rng.integers(5, V, size=(B, L))
    lengths = np.array([L, 9, 5])
    attention_mask = (np.arange(L)[None] < lengths[:, None]).astype(np.int64)
    ids = np.where(attention_mask > 0, ids, 0)
    chosen = (rng.random((B, L)) < 0.3) & (attention_mask > 0)
    chosen[:, 1] = True
    labels = np.where(chosen, ids, -100)
    token_types = np.where(np.arange(L)[None] >= 4, 1, 0) * attention_mask
    return ids, attention_mask, token_types, labels


def _mmjax_loss(logits, labels):
    valid = labels >= 0
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.where(valid, labels, 0))
    return jnp.sum(jnp.where(valid, ce, 0.0)) / jnp.sum(valid)


def test_logits_and_loss_match_hf_with_padding(hf_model):
    ids, attention_mask, token_types, labels = _inputs()
    with torch.no_grad():
        out = hf_model(
            input_ids=torch.tensor(ids),
            attention_mask=torch.tensor(attention_mask),
            token_type_ids=torch.tensor(token_types),
            labels=torch.tensor(labels),
        )
    cfg = bert_config_from_hf(hf_model.config)
    params = convert_hf_bert(hf_model.state_dict(), cfg)
    # Padding is segment 0, real tokens segment 1: real tokens never see padded keys, as in HF.
    logits = BertMLM(cfg).apply({"params": params}, ids, attention_mask, None, token_types)
    real = attention_mask > 0
    np.testing.assert_allclose(np.asarray(logits)[real], out.logits.numpy()[real], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(float(_mmjax_loss(logits, labels)), out.loss.item(), atol=1e-5, rtol=1e-5)


def test_round_trip_is_exact_and_mismatches_are_listed(hf_model):
    cfg = bert_config_from_hf(hf_model.config)
    state = {k: v.numpy() for k, v in hf_model.state_dict().items()}
    params = convert_hf_bert(state, cfg)
    back = to_hf_bert(params, cfg)
    assert set(back) == set(state)
    for key, value in state.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)
    # Shapes agree with what BertMLM.init makes.
    fresh = jax.eval_shape(lambda: BertMLM(cfg).init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))["params"])
    fresh = flax.linen.meta.unbox(fresh)
    assert jax.tree.structure(fresh) == jax.tree.structure(params)
    assert jax.tree.leaves(jax.tree.map(lambda a, b: a.shape == b.shape, fresh, params)) == [True] * len(
        jax.tree.leaves(params)
    )
    broken = {k: v for k, v in state.items() if k != "bert.encoder.layer.1.output.dense.bias"}
    broken["bert.pooler.dense.weight"] = np.zeros((32, 32), np.float32)
    with pytest.raises(CheckpointMismatchError, match=r"missing \(1\): bert.encoder.layer.1.output.dense.bias"):
        convert_hf_bert(broken, cfg)
