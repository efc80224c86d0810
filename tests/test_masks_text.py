import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.masking import (
    bert_corruption,
    bert_mask,
    frequency_weighted_mask,
    mlm_candidates,
    ngram_mask,
    span_mask,
    truncated_geometric_logits,
)
from tests.mask_properties import check_key_properties

PAD, CLS, SEP, MASK = 0, 1, 2, 3
VOCAB = 50


def make_batch(key, batch, length, min_len=8):
    """[CLS] tokens [SEP] padding, with a random real length per example."""
    k_ids, k_len = jax.random.split(key)
    ids = jax.random.randint(k_ids, (batch, length), 4, VOCAB)
    lengths = jax.random.randint(k_len, (batch, 1), min_len, length + 1)
    pos = jnp.arange(length)[None]
    ids = jnp.where(pos == 0, CLS, ids)
    ids = jnp.where(pos == lengths - 1, SEP, ids)
    ids = jnp.where(pos >= lengths, PAD, ids)
    return ids, (pos < lengths).astype(jnp.int32)


def runs(chosen_row):
    """Lengths of the runs of True."""
    edges = np.diff(np.concatenate([[0], chosen_row.astype(int), [0]]))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def test_candidates_exclude_specials_and_padding():
    ids, attn = make_batch(jax.random.key(0), 4, 16)
    cand = np.asarray(mlm_candidates(ids, (PAD, CLS, SEP), attn))
    ids = np.asarray(ids)
    np.testing.assert_array_equal(cand, (ids >= 4) & np.asarray(attn).astype(bool))


def test_bert_mask_exact_count_never_special_or_pad():
    ids, attn = make_batch(jax.random.key(1), 64, 40)
    cand = mlm_candidates(ids, (PAD, CLS, SEP), attn)
    chosen = np.asarray(bert_mask(jax.random.key(2), cand, 0.15).mask)
    n = np.asarray(cand).sum(1)
    np.testing.assert_array_equal(chosen.sum(1), np.maximum(1, np.round(0.15 * n)))
    assert not (chosen & ~np.asarray(cand)).any()


def test_bert_mask_bernoulli_rate():
    cand = jnp.ones((200, 100), bool)
    chosen = np.asarray(bert_mask(jax.random.key(3), cand, 0.3, exact=False).mask)
    assert abs(chosen.mean() - 0.3) < 4 * math.sqrt(0.21 / chosen.size)
    assert len(set(chosen.sum(1).tolist())) > 1  # the count varies


def test_corruption_80_10_10_split_and_labels():
    ids, attn = make_batch(jax.random.key(4), 256, 128, min_len=100)
    out = bert_corruption(
        jax.random.key(5),
        ids,
        vocab_size=VOCAB,
        mask_token_id=MASK,
        special_ids=(PAD, CLS, SEP),
        attention_mask=attn,
    )
    ids, chosen = np.asarray(ids), np.asarray(out.mask)
    action, new, labels = np.asarray(out.action), np.asarray(out.input_ids), np.asarray(out.labels)
    n = chosen.sum()
    assert n > 3000
    for code, p in [(1, 0.8), (2, 0.1), (3, 0.1)]:
        frac = (action == code).sum() / n
        assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / n), (code, frac)
    assert ((action > 0) == chosen).all()
    assert (new[action == 1] == MASK).all()
    assert (new[action == 3] == ids[action == 3]).all()
    assert ((new[action == 2] >= 0) & (new[action == 2] < VOCAB)).all()
    assert (new[~chosen] == ids[~chosen]).all()
    np.testing.assert_array_equal(labels, np.where(chosen, ids, -100))
    assert not chosen[ids < 4].any()


def test_corruption_uses_a_given_selection_within_candidates():
    ids, attn = make_batch(jax.random.key(6), 4, 20)
    given = jnp.ones(ids.shape, bool)
    out = bert_corruption(
        jax.random.key(7),
        ids,
        vocab_size=VOCAB,
        mask_token_id=MASK,
        special_ids=(PAD, CLS, SEP),
        chosen=given,
    )
    np.testing.assert_array_equal(np.asarray(out.mask), np.asarray(ids) >= 4)


def test_span_lengths_follow_the_truncated_geometric_mean():
    logits = truncated_geometric_logits(0.2, 10)
    mean = float((np.exp(logits) * np.arange(1, 11)).sum())
    assert abs(mean - 3.8) < 0.05  # SpanBERT's figure
    cand = jnp.ones((8, 2048), bool)
    chosen = np.asarray(span_mask(jax.random.key(8), cand, 0.15).mask)
    np.testing.assert_array_equal(chosen.sum(1), round(0.15 * 2048))
    lengths = np.concatenate([runs(r) for r in chosen])
    assert lengths.max() <= 10
    se = math.sqrt((np.exp(logits) * (np.arange(1, 11) - mean) ** 2).sum() / len(lengths))
    assert abs(lengths.mean() - mean) < 4 * se + 0.05, lengths.mean()


def test_spans_respect_candidates_and_whole_words():
    ids, attn = make_batch(jax.random.key(9), 32, 64, min_len=40)
    cand = mlm_candidates(ids, (PAD, CLS, SEP), attn)
    word_starts = jax.random.bernoulli(jax.random.key(10), 0.5, ids.shape)
    chosen = np.asarray(span_mask(jax.random.key(11), cand, 0.2, word_starts=word_starts).mask)
    assert not (chosen & ~np.asarray(cand)).any()
    ws = np.asarray(word_starts) | ~np.asarray(cand)
    ws[:, 0] = True
    word = np.cumsum(ws, axis=1)
    for b in range(32):
        for w in np.unique(word[b][chosen[b]]):
            assert chosen[b][(word[b] == w) & np.asarray(cand)[b]].all()  # whole words only
        assert chosen[b].sum() <= round(0.2 * np.asarray(cand)[b].sum())


def test_ngram_lengths_are_proportional_to_one_over_n():
    chosen = np.asarray(ngram_mask(jax.random.key(12), jnp.ones((8, 2048), bool), 0.15, max_n=3).mask)
    lengths = np.concatenate([runs(r) for r in chosen])
    assert lengths.max() <= 3
    want = np.array([1, 1 / 2, 1 / 3]) / (11 / 6)
    got = np.bincount(lengths, minlength=4)[1:] / len(lengths)
    assert np.all(np.abs(got - want) < 4 * np.sqrt(want * (1 - want) / len(lengths)) + 0.01), got


def test_frequency_weighting_prefers_rare_tokens():
    ids = jax.random.randint(jax.random.key(13), (256, 64), 0, 2)  # token 0 common, token 1 rare
    counts = jnp.array([10000.0, 10.0])
    cand = jnp.ones(ids.shape, bool)
    chosen = np.asarray(frequency_weighted_mask(jax.random.key(14), ids, cand, counts, 0.15, alpha=0.5).mask)
    np.testing.assert_array_equal(chosen.sum(1), round(0.15 * 64))
    ids = np.asarray(ids)
    rate_rare, rate_common = chosen[ids == 1].mean(), chosen[ids == 0].mean()
    assert rate_rare > 3 * rate_common
    flat = np.asarray(frequency_weighted_mask(jax.random.key(14), jnp.asarray(ids), cand, counts, 0.15, alpha=0.0).mask)
    assert abs(flat[ids == 1].mean() - flat[ids == 0].mean()) < 0.02


@pytest.mark.parametrize(
    "make",
    [
        lambda k: bert_mask(k, jnp.ones((4, 32), bool)),
        lambda k: span_mask(k, jnp.ones((4, 32), bool), 0.3),
        lambda k: ngram_mask(k, jnp.ones((4, 32), bool), 0.3),
        lambda k: frequency_weighted_mask(k, jnp.zeros((4, 32), jnp.int32), jnp.ones((4, 32), bool), jnp.ones(2)),
        lambda k: bert_corruption(k, jnp.full((4, 32), 7), vocab_size=VOCAB, mask_token_id=MASK),
    ],
)
def test_key_properties(make):
    check_key_properties(make)


def test_errors_name_the_value():
    with pytest.raises(ValueError, match="rate must be in"):
        bert_mask(jax.random.key(0), jnp.ones((1, 4), bool), 1.5)
    with pytest.raises(ValueError, match="mask_prob \\+ random_prob"):
        bert_corruption(
            jax.random.key(0),
            jnp.ones((1, 4), int),
            vocab_size=5,
            mask_token_id=3,
            mask_prob=0.9,
            random_prob=0.2,
        )
