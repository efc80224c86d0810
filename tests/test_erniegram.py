"""ERNIE-Gram's explicit n-gram prediction (`ngram.vocab_size` > 0 on `mlm.selection=ngram`): the lexicon,
the class of each masked n-gram, the head's loss, the config check, and training."""

import math
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmjax.config import ConfigError
from mmjax.data.text import load_tokenizer, ngram_lexicon
from mmjax.export import to_hf_bert
from mmjax.masking.text import chosen_spans, ngram_mask, unit_starts
from mmjax.methods.ngram_targets import NGRAM_HEAD, ngram_classes, ngram_logits, ngram_loss, ngram_targets
from mmjax.methods.registry import build_method
from tests.test_mlm import batch, tiny_config, tokenizer_file  # noqa: F401  (fixtures)


def counter_top(sequences, max_n, size, min_count=1, starts=None):
    """The reference: n-grams of whole units (`starts`) of each sequence, by a Counter; ties by tuple."""
    counts = Counter()
    for s, seq in enumerate(sequences):
        for n in range(2, max_n + 1):
            for i in range(len(seq) - n + 1):
                if starts is None or (starts[s][i] and (i + n == len(seq) or starts[s][i + n])):
                    counts[tuple(seq[i : i + n])] += 1
    ranked = sorted(((g, c) for g, c in counts.items() if c >= min_count), key=lambda gc: (-gc[1], gc[0]))
    return ranked[:size]


def as_tuples(lexicon):
    return [
        (tuple(int(t) for t in row if t >= 0), int(c)) for row, c in zip(lexicon.ngrams, lexicon.counts, strict=True)
    ]


def test_the_lexicon_is_the_top_k_of_a_counter_with_ties_by_tuple():
    rng = np.random.default_rng(0)
    stream = rng.integers(0, 5, 300).tolist()  # a small alphabet: many ties
    for size, min_count in ((12, 1), (40, 3), (1000, 1)):
        got = as_tuples(ngram_lexicon(stream, 3, size, min_count=min_count))
        assert got == counter_top([stream], 3, size, min_count)
    # A prefix ties before its extensions: (1, 2) then (1, 2, 3), both seen twice.
    assert as_tuples(ngram_lexicon([1, 2, 3, 9, 1, 2, 3], 3, 3)) == [((1, 2), 2), ((1, 2, 3), 2), ((2, 3), 2)]
    # Rows never join, invalid tokens break n-grams, and n-grams hold whole units.
    rows = rng.integers(0, 4, (6, 10))
    valid = rng.random(rows.shape) < 0.8
    starts = rng.random(rows.shape) < 0.7
    pieces, piece_starts = [], []
    for r in range(len(rows)):  # the valid runs of each row, as separate sequences
        run = []
        for i in range(rows.shape[1] + 1):
            if i < rows.shape[1] and valid[r, i]:
                run.append(i)
            elif run:
                pieces.append(rows[r, run].tolist())
                # A run ends where an invalid token starts a unit; its first token starts one too.
                piece_starts.append([True] + [bool(starts[r, j]) for j in run[1:]])
                run = []
    units = np.asarray(unit_starts(jnp.asarray(valid), jnp.asarray(starts)))  # as ngram_mask's units
    lexicon = ngram_lexicon(rows, 4, 50, valid=valid, unit_starts=units)
    assert as_tuples(lexicon) == counter_top(pieces, 4, 50, starts=piece_starts)
    assert ngram_lexicon([1, 2], 3, 0).ngrams.shape == (0, 3)


def test_the_search_finds_exactly_the_lexicon_entries():
    rng = np.random.default_rng(1)
    lexicon = ngram_lexicon(rng.integers(0, 6, 400), 3, 30)
    rows, classes = (jnp.asarray(a) for a in lexicon.search_table())
    known = {tuple(r): k for k, r in enumerate(lexicon.ngrams.tolist())}
    pairs = [[a, b, -1] for a in range(7) for b in range(7)]
    triples = [[a, b, c] for a in range(3) for b in range(3) for c in range(7)]
    queries = lexicon.ngrams.tolist() + pairs + triples  # every entry, and many absent n-grams
    got = np.asarray(jax.jit(ngram_classes)(rows, classes, jnp.asarray(queries, jnp.int32)))
    np.testing.assert_array_equal(got, [known.get(tuple(q), -1) for q in queries])
    empty = ngram_lexicon([1], 3, 5).search_table()
    assert np.all(np.asarray(ngram_classes(*map(jnp.asarray, empty), jnp.asarray(queries[:4], jnp.int32))) == -1)


def test_ngram_mask_spans_are_its_runs_of_whole_units():
    key = jax.random.key(4)
    candidates = jax.random.uniform(jax.random.key(0), (64, 40)) < 0.9
    chosen = ngram_mask(key, candidates, 0.4, max_n=3).mask
    starts, lengths = (np.asarray(a) for a in chosen_spans(chosen))
    assert lengths.max() == 3 and lengths[starts].min() == 1  # spans of 1..max_n tokens, not merged runs
    assert lengths.sum() == int(np.asarray(chosen).sum())
    words = jax.random.uniform(jax.random.key(1), candidates.shape) < 0.6
    chosen = np.asarray(ngram_mask(key, candidates, 0.4, max_n=3, word_starts=words).mask)
    starts, lengths = (np.asarray(a) for a in chosen_spans(chosen))
    units = np.asarray(unit_starts(candidates, words))
    for b, i in zip(*np.nonzero(starts), strict=True):
        end = i + lengths[b, i]
        assert units[b, i] and (end == chosen.shape[1] or units[b, end])  # whole units
        assert 1 <= units[b, i:end].sum() <= 3  # of at most max_n words


def test_each_masked_span_gets_its_lexicon_class():
    lexicon = ngram_lexicon([5, 6, 7, 5, 6, 7, 8, 9, 5, 6, 8, 9, 8, 9], 3, 4)
    names = {g: k for k, (g, _) in enumerate(as_tuples(lexicon))}
    assert set(names) == {(5, 6), (8, 9), (5, 6, 7), (6, 7)}
    ids = np.asarray([[5, 6, 7, 1, 8, 9, 4, 5, 6, 2, 6, 7], [8, 9, 5, 6, 7, 7, 3, 5, 6, 7, 5, 6]])
    chosen = np.zeros(ids.shape, bool)
    chosen[0, 0:3] = chosen[0, 4:6] = chosen[0, 7] = chosen[0, 10:12] = True  # 5 6 7 | 8 9 | 5 | 6 7
    chosen[1, 2:6] = chosen[1, 7:9] = True  # 5 6 7 7 (4 tokens: no class) | 5 6
    rows, classes = (jnp.asarray(a) for a in lexicon.search_table())
    targets, multi = (np.asarray(a) for a in ngram_targets(jnp.asarray(ids), jnp.asarray(chosen), rows, classes, 3))
    expected, spans = np.full(ids.shape, -1), np.zeros(ids.shape, bool)
    for b in range(len(ids)):  # plain Python: walk the runs
        i = 0
        while i < ids.shape[1]:
            if not chosen[b, i]:
                i += 1
                continue
            j = i
            while j < ids.shape[1] and chosen[b, j]:
                j += 1
            if j - i >= 2:
                spans[b, i] = True
                expected[b, i] = names.get(tuple(ids[b, i:j]), -1) if j - i <= 3 else -1
            i = j
    np.testing.assert_array_equal(targets, expected)
    np.testing.assert_array_equal(multi, spans)
    assert (targets >= 0).sum() == 4 and multi.sum() == 5


def test_the_head_loss_is_cross_entropy_at_the_classes_only():
    k = jax.random.split(jax.random.key(2), 3)
    width, classes = 8, 5
    head = {
        "dense": {"kernel": jax.random.normal(k[0], (width, width)), "bias": jnp.zeros(width)},
        "norm": {"scale": jnp.ones(width), "bias": jnp.zeros(width)},
        "out": {"kernel": jax.random.normal(k[1], (width, classes)), "bias": jnp.zeros(classes)},
    }
    hidden = jax.random.normal(k[2], (2, 6, width))
    targets = jnp.asarray([[0, -1, 3, -1, -1, 4], [-1, -1, -1, 1, 1, -1]])
    loss, metrics = ngram_loss(head, hidden, targets)
    # Independently, in numpy: the head, then log-softmax.
    h = np.asarray(hidden, np.float64) @ np.asarray(head["dense"]["kernel"], np.float64)
    h = 0.5 * h * (1 + np.vectorize(math.erf)(h / np.sqrt(2)))  # exact GELU
    h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-12)
    logits = h @ np.asarray(head["out"]["kernel"], np.float64)
    np.testing.assert_allclose(np.asarray(ngram_logits(head, hidden)), logits, rtol=1e-4, atol=1e-4)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    t = np.asarray(targets)
    picked = [-logp[b, i, t[b, i]] for b, i in zip(*np.nonzero(t >= 0), strict=True)]
    np.testing.assert_allclose(float(loss), np.mean(picked), rtol=1e-5)
    right = [logits[b, i].argmax() == t[b, i] for b, i in zip(*np.nonzero(t >= 0), strict=True)]
    np.testing.assert_allclose(float(metrics["ngram_accuracy"]), np.mean(right), rtol=1e-6)
    # All-right logits: the loss falls to ~0; all on a wrong class: it grows with the margin.
    same = jnp.where(targets >= 0, 2, -1)
    sure = {**head, "out": {**head["out"], "bias": jnp.zeros(classes).at[2].set(60.0)}}
    assert float(ngram_loss(sure, hidden, same)[0]) < 1e-6
    assert float(ngram_loss(sure, hidden, jnp.where(targets >= 0, 0, -1))[0]) > 40
    assert float(ngram_loss(head, hidden, jnp.full_like(targets, -1))[0]) == 0  # no class: no loss


def test_the_knob_needs_ngram_selection(tokenizer_file):  # noqa: F811
    config = tiny_config(tokenizer_file)
    config.ngram.vocab_size = 32
    with pytest.raises(ConfigError, match=r"^ngram.vocab_size=32 needs mlm.selection='ngram', got 'random'$"):
        build_method(config)
    config = tiny_config(tokenizer_file, selection="ngram", objective="clm")
    config.ngram.vocab_size = 32
    with pytest.raises(ConfigError, match="needs mlm.objective='mlm'"):
        build_method(config)
    config = tiny_config(tokenizer_file, selection="ngram")
    config.ngram.max_n = 1
    with pytest.raises(ConfigError, match="ngram.max_n=1"):
        build_method(config)


def test_the_method_predicts_the_masked_ngrams_and_training_lowers_that_loss(tokenizer_file, batch):  # noqa: F811
    bert = build_method(tiny_config(tokenizer_file, selection="ngram"))
    assert bert.term("ngram") is None and NGRAM_HEAD not in jax.eval_shape(bert.init, jax.random.key(0), batch)
    config = tiny_config(tokenizer_file, selection="ngram")
    config.mlm.rate = 0.4
    config.ngram.update(vocab_size=64, max_n=3)
    method = build_method(config)
    assert len(method.term("ngram").lexicon) == 64
    params = jax.jit(method.init)(jax.random.key(0), batch)
    assert params[NGRAM_HEAD]["out"]["kernel"].shape == (16, 64)
    assert all(jax.tree.leaves(method.trainable(params)[NGRAM_HEAD]))
    assert jax.tree.structure(method.param_axes()) == jax.tree.structure(params)
    # The head is the method's own: the BERT export and fill_mask read the rest as before.
    exported = to_hf_bert(jax.device_get(params), method.model_config)
    assert exported.keys() == to_hf_bert(jax.device_get(bert.init(jax.random.key(0), batch)), bert.model_config).keys()
    assert len(method.fill_mask(params, load_tokenizer(config.data), "a [MASK] loop", top_k=2)[0]) == 2
    key = jax.random.key(3)
    loss, metrics = jax.jit(lambda p: method.loss(p, batch, key))(params)
    np.testing.assert_allclose(float(loss), float(metrics["mlm_loss"] + metrics["ngram_loss"]), rtol=1e-6)
    # Coverage, by hand from the same corruption: chosen runs of 2..3 tokens found in the lexicon.
    corruption = method.corrupt(jax.random.split(key)[0], batch["input_ids"], batch["segment_ids"])
    ids, chosen = np.asarray(batch["input_ids"]), np.asarray(corruption.mask)
    known = {g for g, _ in as_tuples(method.term("ngram").lexicon)}
    starts, lengths = (np.asarray(a) for a in chosen_spans(corruption.mask))
    spans = [tuple(ids[b, i : i + lengths[b, i]]) for b, i in zip(*np.nonzero(starts & (lengths >= 2)), strict=True)]
    assert spans and chosen.sum() > len(spans)
    np.testing.assert_allclose(float(metrics["ngram_coverage"]), np.mean([s in known for s in spans]), rtol=1e-6)
    assert not np.isin(ids[chosen], list(method.special.as_tuple())).any()

    opt = optax.adam(1e-2)
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        (_, metrics), grads = jax.value_and_grad(lambda p: method.loss(p, batch, key), has_aux=True)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, metrics["ngram_loss"]

    losses = []
    for _ in range(12):
        params, state, ngram = step(params, state)
        losses.append(float(ngram))
    assert losses[-1] < 0.5 * losses[0], losses
