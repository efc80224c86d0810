"""Token-sequence masking for text: BERT corruption, span, whole n-gram and frequency-weighted selection.

Selection functions return a `Mask` over `[B, L]` (True = chosen for prediction);
`bert_corruption` turns a selection into corrupted ids and labels. Special tokens and
padding are never chosen: build the candidates with `mlm_candidates`. `unit_starts` and
`chosen_spans` give the unit structure of span / n-gram selections (ERNIE-Gram's n-gram targets).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.masking.dense import select_lowest
from mmjax.masking.mask import Mask


@flax.struct.dataclass
class MLMCorruption:
    """Inputs and targets of one masked-language-modeling step.

    Attributes:
      input_ids: int32 `[B, L]`, the corrupted sequence fed to the model.
      labels: int32 `[B, L]`, the original id at chosen positions, `ignore_index` elsewhere.
      mask: bool `[B, L]`, the chosen positions (where the loss is taken).
      action: int32 `[B, L]`: 0 not chosen, 1 replaced by the mask token, 2 replaced by a
        random token, 3 chosen but left unchanged.
    """

    input_ids: jax.Array
    labels: jax.Array
    mask: jax.Array
    action: jax.Array


def mlm_candidates(
    ids: jax.Array, special_ids: Sequence[int] = (), attention_mask: jax.Array | None = None
) -> jax.Array:
    """Positions that may be chosen: not a special token and not padding.

    Args:
      ids: int `[B, L]`.
      special_ids: ids never chosen (`[CLS]`, `[SEP]`, `[PAD]`, ...).
      attention_mask: `[B, L]`, nonzero on real tokens (None: all real).

    Returns:
      bool `[B, L]`.
    """
    ok = ~jnp.isin(ids, jnp.asarray(list(special_ids), dtype=ids.dtype)) if special_ids else jnp.ones(ids.shape, bool)
    if attention_mask is not None:
        ok &= attention_mask.astype(bool)
    return ok


def _budget(candidates: jax.Array, rate: float) -> jax.Array:
    """BERT's count: `max(1, round(rate * candidates))`, 0 for an example with no candidates."""
    n = jnp.sum(candidates, axis=-1)
    return jnp.where(n > 0, jnp.maximum(1, jnp.round(rate * n)), 0).astype(jnp.int32)


def _check_rate(rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")


@partial(jax.jit, static_argnames=("rate", "exact"))
def bert_mask(key: jax.Array, candidates: jax.Array, rate: float = 0.15, *, exact: bool = True) -> Mask:
    """BERT token selection (Devlin et al. 2019): choose `rate` of the candidate tokens uniformly.

    Args:
      key: PRNG key.
      candidates: bool `[B, L]` from `mlm_candidates`.
      rate: fraction to choose (0.15 in BERT; Wettig et al. 2023 find up to 0.4 helps).
      exact: True: exactly `max(1, round(rate * n))` of the n candidates per example, as
        BERT's data generator; False: each candidate independently with probability
        `rate`, as HF's `DataCollatorForLanguageModeling`.

    Returns:
      Mask with `mask` bool `[B, L]`.
    """
    _check_rate(rate)
    if exact:
        chosen = select_lowest(jax.random.uniform(key, candidates.shape), candidates, _budget(candidates, rate))
    else:
        chosen = jax.random.bernoulli(key, rate, candidates.shape) & candidates
    return Mask(mask=chosen)


def bert_corruption(
    key: jax.Array,
    ids: jax.Array,
    *,
    vocab_size: int,
    mask_token_id: int,
    rate: float = 0.15,
    special_ids: Sequence[int] = (),
    attention_mask: jax.Array | None = None,
    chosen: jax.Array | None = None,
    mask_prob: float = 0.8,
    random_prob: float = 0.1,
    exact: bool = True,
    ignore_index: int = -100,
) -> MLMCorruption:
    """BERT MLM corruption: of the chosen tokens, 80% -> mask token, 10% -> random token, 10% kept.

    Follows Devlin et al. 2019 and HF `DataCollatorForLanguageModeling`: each chosen
    token independently becomes the mask token with probability `mask_prob`, a token
    drawn uniformly from `[0, vocab_size)` with probability `random_prob`, and stays
    otherwise. Labels hold the original id at chosen positions and `ignore_index`
    (HF's -100) elsewhere.

    Args:
      key: PRNG key.
      ids: int `[B, L]`.
      vocab_size: size of the vocabulary for random replacements.
      mask_token_id: id of `[MASK]`.
      rate: fraction of candidates chosen (when `chosen` is None, see `bert_mask`).
      special_ids, attention_mask: what may never be chosen (see `mlm_candidates`).
      chosen: bool `[B, L]`, a selection made elsewhere (span, n-gram, weighted);
        it is still intersected with the candidates.
      mask_prob, random_prob: the split of chosen tokens.
      exact: see `bert_mask`.
      ignore_index: label of positions without loss.

    Returns:
      MLMCorruption with `[B, L]` arrays.
    """
    if mask_prob < 0 or random_prob < 0 or mask_prob + random_prob > 1:
        raise ValueError(f"mask_prob + random_prob must be in [0, 1], got {mask_prob} + {random_prob}")
    k_select, k_action, k_token = jax.random.split(key, 3)
    candidates = mlm_candidates(ids, special_ids, attention_mask)
    if chosen is None:
        chosen = bert_mask(k_select, candidates, rate, exact=exact).mask
    else:
        chosen = chosen & candidates
    u = jax.random.uniform(k_action, ids.shape)
    action = jnp.where(u < mask_prob, 1, jnp.where(u < mask_prob + random_prob, 2, 3))
    action = jnp.where(chosen, action, 0).astype(jnp.int32)
    random_ids = jax.random.randint(k_token, ids.shape, 0, vocab_size, dtype=ids.dtype)
    corrupted = jnp.where(action == 1, jnp.asarray(mask_token_id, ids.dtype), ids)
    corrupted = jnp.where(action == 2, random_ids, corrupted)
    labels = jnp.where(chosen, ids, jnp.asarray(ignore_index, ids.dtype))
    return MLMCorruption(input_ids=corrupted, labels=labels, mask=chosen, action=action)


@partial(jax.jit, static_argnames=("rate", "alpha"))
def frequency_weighted_mask(
    key: jax.Array,
    ids: jax.Array,
    candidates: jax.Array,
    token_counts: jax.Array,
    rate: float = 0.15,
    *,
    alpha: float = 0.5,
) -> Mask:
    """Frequency-weighted selection (Zhang et al. 2023, "Weighted Sampling for Masked Language Modeling").

    Chooses the same count as `bert_mask` (exact), without replacement, with each
    candidate's probability proportional to `(count(token) + 1) ** -alpha`: rare tokens
    are chosen more often. `alpha = 0` is uniform BERT selection. (Gumbel top-k.)

    Args:
      key: PRNG key.
      ids: int `[B, L]`.
      candidates: bool `[B, L]`.
      token_counts: `[V]` corpus frequency of each token id.
      rate: fraction of candidates chosen.
      alpha: strength of the preference for rare tokens.

    Returns:
      Mask with `mask` bool `[B, L]`.
    """
    return token_weighted_mask(key, ids, candidates, -alpha * jnp.log1p(jnp.asarray(token_counts, jnp.float32)), rate)


def token_weighted_mask(
    key: jax.Array, ids: jax.Array, candidates: jax.Array, log_weights: jax.Array, rate: float = 0.15
) -> Mask:
    """BERT's exact count of candidates, chosen without replacement with probability proportional to
    `exp(log_weights[token])` (Gumbel top-k); the sampler of the weighted-sampling MLMs.

    Args:
      key: PRNG key.
      ids: int `[B, L]`.
      candidates: bool `[B, L]`.
      log_weights: float `[V]`, a log-weight per token id (frequency: `-alpha log(1 + count)`;
        training loss: `alpha log(loss)`); equal weights are uniform BERT selection.
      rate: fraction of candidates chosen.

    Returns:
      Mask with `mask` bool `[B, L]`.
    """
    _check_rate(rate)
    gumbel = jax.random.gumbel(key, ids.shape)
    return Mask(
        mask=select_lowest(
            -(jnp.asarray(log_weights, jnp.float32)[ids] + gumbel), candidates, _budget(candidates, rate)
        )
    )


def truncated_geometric_logits(p: float, max_len: int) -> np.ndarray:
    """Log-probabilities of lengths `1..max_len` under Geometric(p) renormalized to that range."""
    if not 0 < p <= 1 or max_len < 1:
        raise ValueError(f"need 0 < p <= 1 and max_len >= 1, got p={p}, max_len={max_len}")
    lengths = np.arange(1, max_len + 1)
    probs = p * (1 - p) ** (lengths - 1)
    return np.log(probs / probs.sum())


@partial(jax.jit, static_argnames=("rate", "p", "max_span", "tries"))
def span_mask(
    key: jax.Array,
    candidates: jax.Array,
    rate: float = 0.15,
    *,
    p: float = 0.2,
    max_span: int = 10,
    word_starts: jax.Array | None = None,
    tries: int = 8,
) -> Mask:
    """SpanBERT span masking (Joshi et al. 2020): contiguous spans with geometric lengths.

    Spans are added until `max(1, round(rate * n))` of the n candidate tokens are
    chosen. Each span's length (in words when `word_starts` is given, else tokens) is
    drawn from Geometric(p) truncated to `[1, max_span]` (mean 3.8 for the paper's
    `p=0.2, max_span=10`), clipped to what is left of the budget; its start is drawn
    among free candidates (`tries` at once, first fit wins). Spans never cover
    non-candidates, never overlap and never touch, so each chosen run is one span.
    At high rates the budget may not be reachable and the count falls short.

    Args:
      key: PRNG key.
      candidates: bool `[B, L]`.
      rate: fraction of candidate tokens chosen.
      p, max_span: the span-length distribution.
      word_starts: bool `[B, L]`, True at the first token of each word: whole words
        are chosen (non-candidates always stand alone).
      tries: start positions tried per span.

    Returns:
      Mask with `mask` bool `[B, L]`.
    """
    _check_rate(rate)
    logits = truncated_geometric_logits(p, max_span)
    return Mask(mask=_unit_spans(key, candidates, rate, logits, word_starts, tries))


@partial(jax.jit, static_argnames=("rate", "max_n", "tries"))
def ngram_mask(
    key: jax.Array,
    candidates: jax.Array,
    rate: float = 0.15,
    *,
    max_n: int = 3,
    word_starts: jax.Array | None = None,
    tries: int = 8,
) -> Mask:
    """Whole n-gram masking (ERNIE-Gram, Xiao et al. 2021; n-gram MLM of ALBERT).

    Like `span_mask` with n-gram lengths `n in [1, max_n]` drawn with probability
    proportional to `1 / n`; with `word_starts` the n-grams are of whole words.

    Args:
      key: PRNG key.
      candidates: bool `[B, L]`.
      rate: fraction of candidate tokens chosen.
      max_n: longest n-gram (3 in ERNIE-Gram).
      word_starts: bool `[B, L]`, True at the first token of each word.
      tries: start positions tried per n-gram.

    Returns:
      Mask with `mask` bool `[B, L]`.
    """
    _check_rate(rate)
    inv = 1.0 / np.arange(1, max_n + 1)
    return Mask(mask=_unit_spans(key, candidates, rate, np.log(inv / inv.sum()), word_starts, tries))


def unit_starts(candidates: jax.Array, word_starts: jax.Array | None = None) -> jax.Array:
    """Where the units of `span_mask` / `ngram_mask` begin: bool `[B, L]`.

    A unit is a word (a `word_starts` position and the tokens up to the next one; every token
    when `word_starts` is None); a non-candidate stands alone, and the token after one starts a
    unit. A selection covers whole units, so a chosen span starts at a unit start and ends just
    before one (or at the row's end).
    """
    if word_starts is None:
        word_starts = jnp.ones_like(candidates)
    not_cand = ~candidates
    after = jnp.pad(not_cand[:, :-1], ((0, 0), (1, 0)), constant_values=True)
    return word_starts.astype(bool) | not_cand | after


def chosen_spans(chosen: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The spans of a `span_mask` / `ngram_mask` selection: `(starts, lengths)`, both `[B, L]`.

    `starts` bool: True at the first token of each chosen span; `lengths` int32: that span's
    length in tokens at its start, 0 elsewhere. Those selections never let two spans touch (a
    chosen unit's neighbours are never chosen by another span), so each maximal run of chosen
    tokens is one span; for any other selection these are its runs.
    """
    chosen = chosen.astype(bool)
    before = jnp.pad(chosen[:, :-1], ((0, 0), (1, 0)), constant_values=False)
    starts = chosen & ~before
    run = jnp.where(chosen, jnp.cumsum(starts, axis=1) - 1, chosen.shape[1])
    size = chosen.shape[1] + 1
    per_run = jax.vmap(lambda c, r: jax.ops.segment_sum(c, r, num_segments=size))(chosen.astype(jnp.int32), run)
    lengths = jnp.take_along_axis(per_run, run, axis=1)
    return starts, jnp.where(starts, lengths, 0).astype(jnp.int32)


def _unit_spans(key, candidates, rate, length_logits, word_starts, tries):
    batch, length = candidates.shape
    starts = unit_starts(candidates, word_starts)
    unit = jnp.cumsum(starts, axis=1) - 1
    seg = partial(jax.vmap(lambda data, ids, op: op(data, ids, num_segments=length), in_axes=(0, 0, None)))
    unit_ok = seg(candidates.astype(jnp.int32), unit, jax.ops.segment_min) > 0
    unit_ok &= jnp.arange(length)[None] <= unit[:, -1:]
    unit_len = seg(jnp.ones_like(unit), unit, jax.ops.segment_sum)
    budget = _budget(candidates, rate)
    one = partial(_spans_one, length_logits=jnp.asarray(length_logits, jnp.float32), tries=tries)
    chosen_units = jax.vmap(one)(jax.random.split(key, batch), unit_ok, unit_len, budget)
    return jnp.take_along_axis(chosen_units, unit, axis=1) & candidates


def _spans_one(key, unit_ok, unit_len, budget, *, length_logits, tries):
    size = unit_ok.shape[0]
    positions = jnp.arange(size)
    zero = jnp.zeros((1,), jnp.int32)
    len_sums = jnp.concatenate([zero, jnp.cumsum(unit_len)])

    def keep_going(state):
        _, count, step, _ = state
        return (count < budget) & (step < size)

    def add_span(state):
        chosen, count, step, key = state
        key, k_len, k_start = jax.random.split(key, 3)
        remaining = budget - count
        span = jnp.minimum(jax.random.categorical(k_len, length_logits) + 1, remaining)
        near = chosen | jnp.pad(chosen[:-1], (1, 0)) | jnp.pad(chosen[1:], (0, 1))
        free = unit_ok & ~near
        free_sums = jnp.concatenate([zero, jnp.cumsum(free)])
        # The k-th free unit for k uniform in [0, number free).
        pick = jnp.floor(jax.random.uniform(k_start, (tries,)) * free_sums[-1]).astype(jnp.int32)
        start = jnp.searchsorted(free_sums[1:], pick + 1)
        end = jnp.minimum(start + span, size)
        fits = (end - start == span) & (free_sums[end] - free_sums[start] == span)
        tokens = len_sums[end] - len_sums[start]
        fits &= tokens <= remaining
        first = jnp.argmax(fits)
        placed = fits[first]
        new = (positions >= start[first]) & (positions < end[first])
        chosen = jnp.where(placed, chosen | new, chosen)
        count = count + jnp.where(placed, tokens[first], 0)
        return chosen, count, step + 1, key

    init = (jnp.zeros(size, bool), jnp.int32(0), jnp.int32(0), key)
    chosen, *_ = jax.lax.while_loop(keep_going, add_span, init)
    return chosen


def at_predicted(chosen: jax.Array, max_predictions: int, *arrays: jax.Array) -> tuple[jax.Array, ...]:
    """`[B, L, ...]` arrays at the positions a head predicts: all (`max_predictions` 0), or each row's first
    `max_predictions` positions where `chosen` `[B, L]` (BERT's `max_predictions_per_seq`)."""
    if not max_predictions:
        return arrays
    order = jnp.argsort(~chosen, axis=1, stable=True)[:, :max_predictions]
    return tuple(jnp.take_along_axis(a, order.reshape(order.shape + (1,) * (a.ndim - 2)), axis=1) for a in arrays)


def chosen_positions(
    selection: str,
    rng: jax.Array,
    input_ids: jax.Array,
    candidates: jax.Array,
    rate: float,
    *,
    word_starts: jax.Array | None = None,
    span_p: float = 0.2,
    max_span: int = 10,
    max_ngram: int = 3,
    log_weights: jax.Array | None = None,
    counts: jax.Array | None = None,
    alpha: float = 0.5,
) -> jax.Array | None:
    """The positions an MLM `selection` chooses among `candidates` bool `[B, L]`: bool `[B, L]`, or None
    for `random` (BERT's own draw, inside `bert_corruption`).

    `span` (SpanBERT) and `ngram` take units from `word_starts`; `loss_weighted` weighs each id by
    `log_weights` `[V]` (zeros: uniform); `frequency_weighted` by `(counts + 1) ** -alpha`.
    """
    if selection == "random":
        return None
    if selection == "span":
        return span_mask(rng, candidates, rate, p=span_p, max_span=max_span, word_starts=word_starts).mask
    if selection == "ngram":
        return ngram_mask(rng, candidates, rate, max_n=max_ngram, word_starts=word_starts).mask
    if selection == "loss_weighted":
        return token_weighted_mask(rng, input_ids, candidates, log_weights, rate).mask
    if selection == "frequency_weighted":
        return frequency_weighted_mask(rng, input_ids, candidates, counts, rate, alpha=alpha).mask
    raise ValueError(
        f"selection must be one of random, span, ngram, loss_weighted, frequency_weighted; got {selection!r}"
    )
