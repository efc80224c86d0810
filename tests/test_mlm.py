"""The `mlm` method: corruption only of real tokens, loss only at chosen positions, fill_mask, training, evaluation."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from mmjax.data.text import load_tokenizer, packed_split, text_data
from mmjax.evaluate.protocols import run_protocols
from mmjax.evaluate.text import heldout_accuracy, masked_token_totals
from mmjax.methods import mlm
from mmjax.methods.mlm import SELECTIONS
from mmjax.methods.registry import build_method
from mmjax.models.bert import BertMLM
from mmjax.train import train
from mmjax.train.defaults import training_sections

L = 32


def tiny_config(tokenizer: str, **mlm_fields) -> ml_collections.ConfigDict:
    config = training_sections(mlm.default_config())
    config.model.update(size=None, width=16, depth=1, heads=2, mlp_dim=32, max_len=L, dropout=0.0)
    config.mlm.update(rate=0.25, **mlm_fields)
    config.data = text_data("pydoc", seq_len=L, vocab_size=300)
    config.data.tokenizer = tokenizer
    config.train.update(steps=16, batch_size=8, lr=1e-2, warmup_steps=0, weight_decay=0.0, log_every=1)
    config.train.update(checkpoint_every=100, tensorboard=False, async_checkpoints=False)
    config.eval.update(batch_size=64)
    return config


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tok") / "tokenizer.json")


@pytest.fixture(scope="module")
def batch(tokenizer_file):
    rows = packed_split(tiny_config(tokenizer_file).data, "train")
    return {k: jnp.asarray(v[:6]) for k, v in rows.items()}


@pytest.mark.parametrize("selection", SELECTIONS)
def test_corruption_touches_only_real_non_special_tokens(tokenizer_file, batch, selection):
    method = build_method(tiny_config(tokenizer_file, selection=selection))
    c = jax.jit(method.corrupt)(jax.random.key(3), batch["input_ids"], batch["segment_ids"])
    ids = np.asarray(batch["input_ids"])
    special = np.isin(ids, method.special.as_tuple()) | (np.asarray(batch["segment_ids"]) == 0)
    chosen = np.asarray(c.mask)
    assert not np.any(chosen & special)
    np.testing.assert_array_equal(np.asarray(c.input_ids)[~chosen], ids[~chosen])
    np.testing.assert_array_equal(np.asarray(c.labels)[chosen], ids[chosen])
    assert np.all(np.asarray(c.labels)[~chosen] == -100)
    assert np.all(np.asarray(c.input_ids)[np.asarray(c.action) == 1] == method.special.mask)
    rate = chosen.sum() / (~special).sum()
    assert 0.15 < rate <= 0.26, rate  # 0.25 of the candidates (span/ngram may fall a little short)


def test_loss_is_cross_entropy_at_chosen_positions_only(tokenizer_file, batch):
    full = build_method(tiny_config(tokenizer_file))
    gathered = build_method(tiny_config(tokenizer_file, max_predictions=12))
    params = jax.jit(full.init)(jax.random.key(0), batch)
    # A random output bias makes each token's cross-entropy its own (at init they are all near log V).
    params = {**params, "head_bias": jax.random.normal(jax.random.key(1), params["head_bias"].shape)}
    rng = jax.random.key(7)

    @jax.jit
    def losses_and_by_hand(params):
        loss, metrics = full.loss(params, batch, rng, train=False)
        loss_gathered, _ = gathered.loss(params, batch, rng, train=False)
        # The same corruption, by hand: the model's logits on the corrupted ids.
        c = full.corrupt(jax.random.split(rng)[0], batch["input_ids"], batch["segment_ids"])
        logits = BertMLM(full.model_config).apply(
            {"params": params}, c.input_ids, batch["segment_ids"], batch["positions"]
        )
        return loss, metrics, loss_gathered, c, logits

    loss, metrics, loss_gathered, c, logits = losses_and_by_hand(params)
    assert int(c.mask.sum(axis=1).max()) <= 12  # so max_predictions=12 keeps every chosen position
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["input_ids"])
    np.testing.assert_allclose(loss, ce[c.mask].mean(), rtol=1e-5)
    np.testing.assert_allclose(loss_gathered, loss, rtol=1e-5)
    assert abs(float(ce[batch["segment_ids"] > 0].mean()) - float(loss)) > 1e-3 * float(loss)  # not over all tokens
    right = (jnp.argmax(logits, -1) == batch["input_ids"])[c.mask]
    np.testing.assert_allclose(metrics["accuracy"], right.mean(), rtol=1e-6)


def test_fill_mask_returns_the_models_argmax(tokenizer_file, batch):
    method = build_method(tiny_config(tokenizer_file))
    params = jax.jit(method.init)(jax.random.key(1), batch)
    tokenizer = load_tokenizer(tiny_config(tokenizer_file).data)
    text = "the [MASK] statement raises an [MASK] when the test fails"
    top = method.fill_mask(params, tokenizer, text, top_k=3)
    ids = [method.special.cls, *tokenizer.encode(text, add_special_tokens=False).ids, method.special.sep]
    logits = jax.jit(BertMLM(method.model_config).apply)({"params": params}, jnp.asarray([ids]))[0]
    where = [i for i, t in enumerate(ids) if t == method.special.mask]
    assert len(top) == len(where) == 2
    for guesses, i in zip(top, where, strict=True):
        assert guesses[0][0] == tokenizer.id_to_token(int(jnp.argmax(logits[i])))
        probs = [p for _, p in guesses]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    with pytest.raises(ValueError, match="no \\[MASK\\]"):
        method.fill_mask(params, tokenizer, "no mask here")


def always_the_top_token(method, config, params):
    """`params` changed to always predict the most frequent non-special train token, and that token."""
    counts = np.bincount(packed_split(config.data, "train")["input_ids"].ravel(), minlength=method.vocab_size)
    counts[list(method.special.as_tuple())] = 0
    bias = np.array(params["head_bias"])
    bias[int(np.argmax(counts))] = 1e4
    return dict(params, head_bias=bias), int(np.argmax(counts))


def test_heldout_evaluation_rows_and_the_unigram_baseline(tokenizer_file, batch, tmp_path):
    config = tiny_config(tokenizer_file)
    method = build_method(config)
    params = jax.jit(method.init)(jax.random.key(config.seed), batch)
    # A model that always says the most frequent non-special train token scores exactly the unigram baseline.
    always_top, top = always_the_top_token(method, config, params)
    totals = masked_token_totals(method, config, always_top)
    assert totals["chosen"] > 100 and 0 < totals["at_mask"] < totals["chosen"] and totals["unigram_id"] == top
    results = run_protocols(config, method, always_top, str(tmp_path))[0]
    assert [(r.protocol, r.name, r.metric, r.baseline, r.split) for r in results] == [
        ("masked-token prediction", name, metric, name == "unigram", "test")
        for name in ("mlm model", "unigram")
        for metric in ("accuracy", "accuracy at [MASK]", "cross-entropy")
    ]
    value = {(r.name, r.metric): r.value for r in results}
    for metric in ("accuracy", "accuracy at [MASK]"):
        assert value["mlm model", metric] == value["unigram", metric]
    assert 0 < value["unigram", "accuracy"] < 0.2
    assert value["unigram", "accuracy"] == totals["unigram_correct"] / totals["chosen"]
    # Add-one-smoothed unigram cross-entropy: above 0, below that of a uniform guess over the vocabulary.
    assert 0 < value["unigram", "cross-entropy"] < np.log(method.vocab_size)
    assert value["mlm model", "cross-entropy"] > 100  # all mass on one token: wrong elsewhere by about 1e4
    assert list(tmp_path.iterdir()) == []  # eval.json is the caller's; nothing else is written


@pytest.mark.slow  # long: kept out of CI's 15-minute budget; run with -m slow
def test_training_reduces_the_loss_on_train_and_heldout_rows(tokenizer_file, batch, tmp_path):
    config = tiny_config(tokenizer_file)
    result = train(config, str(tmp_path))
    method, trained = result.method, jax.device_get(result.state.params)
    initial = jax.jit(method.init)(jax.random.key(config.seed), batch)
    fixed = jax.jit(lambda p: method.loss(p, batch, jax.random.key(5), train=False)[0])
    assert float(fixed(trained)) < float(fixed(initial)) - 0.15
    # And on the held-out split: lower cross-entropy than at initialization, the same unigram rows.
    before, after = (
        {(r.name, r.metric): r.value for r in heldout_accuracy(method, config, p)} for p in (initial, trained)
    )
    assert after["mlm model", "cross-entropy"] < before["mlm model", "cross-entropy"] - 0.15, (before, after)
    assert after["unigram", "accuracy"] == before["unigram", "accuracy"] > 0


def test_bad_mlm_fields_are_named(tokenizer_file):
    with pytest.raises(ValueError, match="mlm.selection='whole': expected one of"):
        build_method(tiny_config(tokenizer_file, selection="whole"))
    config = tiny_config(tokenizer_file)
    config.model.vocab_size = 100
    vocab = load_tokenizer(config.data).get_vocab_size()
    with pytest.raises(ValueError, match=f"model.vocab_size=100 is smaller than the tokenizer.s {vocab}"):
        build_method(config)
    config = tiny_config(tokenizer_file)
    config.data.seq_len = 64
    with pytest.raises(ValueError, match="data.seq_len=64 exceeds model.max_len=32"):
        build_method(config)


def test_experiment_files_resolve_to_valid_sections():
    from experiments import mlm_bert_base, mlm_pydoc
    from mmjax.config import dataclass_from_config
    from mmjax.methods.mlm import MLMOptions
    from mmjax.models.bert import bert_config_from_section

    base = mlm_bert_base.get_config("seq_len=512,rate=0.4")
    cfg = bert_config_from_section(base.model, 30522)
    assert (cfg.width, cfg.depth, cfg.heads, cfg.mlp_dim, cfg.max_len) == (768, 12, 12, 3072, 512)
    options = dataclass_from_config(MLMOptions, base.mlm, "mlm")
    assert options.rate == 0.4 and options.max_predictions >= round(0.4 * (512 - 2))
    for selection in SELECTIONS:
        small = mlm_pydoc.get_config(f"selection={selection},steps=5")
        assert dataclass_from_config(MLMOptions, small.mlm, "mlm").selection == selection
        assert small.data.seq_len <= bert_config_from_section(small.model, 4000).max_len


def test_pseudo_log_likelihood_is_the_sum_of_each_token_masked_alone(tokenizer_file, batch):
    # Salazar et al. 2020: mask each token in turn. Computed here one position at a time, unpadded, in float64.
    method = build_method(tiny_config(tokenizer_file))
    params = jax.jit(method.init)(jax.random.key(2), batch)
    tokenizer = load_tokenizer(tiny_config(tokenizer_file).data)
    texts = ["the test fails when the value is wrong", "return the list", "a"]
    got = method.pseudo_log_likelihood(params, tokenizer, texts, batch_size=4)  # several chunks, a padded last one
    apply = jax.jit(BertMLM(method.model_config).apply)
    for text, score in zip(texts, got, strict=True):
        ids = [method.special.cls, *tokenizer.encode(text, add_special_tokens=False).ids, method.special.sep]
        expected = 0.0
        for i in range(1, len(ids) - 1):
            masked = list(ids)
            masked[i] = method.special.mask
            logits = np.asarray(apply({"params": params}, jnp.asarray([masked]))[0, i, : method.vocab_size], np.float64)
            expected += logits[ids[i]] - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()
        np.testing.assert_allclose(score, expected, rtol=1e-5, atol=1e-4)
    assert got[0] < got[1] < 0  # more tokens, more surprise (random weights)
    with pytest.raises(ValueError, match="text 0 has .* tokens; model.max_len=32"):
        method.pseudo_log_likelihood(params, tokenizer, [" ".join(["word"] * 40)])
