"""Explicit n-gram targets (ERNIE-Gram, Xiao et al. 2021, "ERNIE-Gram: Pre-Training with Explicitly
N-Gram Masked Language Modeling"): each masked n-gram is also predicted as one identity.

An add-on term of BERT's MLM (`NgramTerm`, section `ngram`, with `mlm.selection=ngram`): an n-gram lexicon, the
`ngram.vocab_size` (K) most frequent n-grams of `n = 2..ngram.max_n` tokens of the packed train
split that cover whole units (words with `mlm.whole_word`; `mmjax.data.text.ngram_lexicon`), is
built once when the method is built; class = frequency rank. Each chosen span of
`mmjax.masking.text.ngram_mask` (`chosen_spans`) whose tokens form a lexicon entry gets that
class; a span of one token, of more than `max_n` tokens, or not in the lexicon has no n-gram
target. A small head (dense, GELU, LayerNorm, dense to K logits, in `params["ngram"]`)
reads the hidden state at the span's FIRST position (the one BERT's head reads there too) and
adds `ngram.weight` times its cross-entropy to the token loss: ERNIE-Gram's comprehensive n-gram
prediction keeps the fine-grained prediction of every masked token next to the coarse one.

Deliberate deviations: ERNIE-Gram collapses each masked n-gram to a single `[MASK]` and adds
enhanced relative-position attention; neither is implemented. mmjax's batches have a fixed
length, so an n-gram of n tokens keeps its n `[MASK]`s (BERT's 80/10/10 applies token by token)
and BERT's absolute positions stay. The lexicon is by frequency, not the paper's T-test.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.config import ConfigError, knob
from mmjax.data.text import NgramLexicon, SpecialIds, ngram_lexicon, packed_split
from mmjax.masking.text import at_predicted, chosen_spans, mlm_candidates, unit_starts
from mmjax.methods.protocol import Params
from mmjax.methods.terms import Step, Term, register_term

NGRAM_HEAD = "ngram"  # params entry of the n-gram head (trained): the term's section


@dataclasses.dataclass(frozen=True)
class NgramOptions:
    """`ngram`: ERNIE-Gram's explicit n-gram prediction; `vocab_size=0` is BERT (no lexicon, no head).

    Not implemented, on purpose: ERNIE-Gram's single `[MASK]` per n-gram (the fixed-length
    rows keep n `[MASK]`s for an n-gram of n tokens) and its enhanced relative attention. The
    head reads the hidden state at the n-gram's first position.
    """

    vocab_size: int = knob(
        0,
        "K: n-gram classes, the K most frequent n-grams of the train split (0 = off, BERT); the head "
        "has K outputs even when fewer n-grams reach min_count",
        low=0,
    )
    max_n: int = knob(3, "longest lexicon n-gram, in tokens (shortest: 2)", low=2)
    weight: float = knob(1.0, "weight of the n-gram cross-entropy next to the token loss", low=0)
    min_count: int = knob(2, "n-grams seen fewer times in the train split stay out of the lexicon", low=1)

    @property
    def enabled(self) -> bool:
        return self.vocab_size > 0

    def check_selection(self, selection: str, objective: str) -> None:
        """The lexicon's classes are of whole masked n-grams: `mlm.selection=ngram`, the MLM objective."""
        if not self.enabled:
            return
        if selection != "ngram":
            raise ConfigError(f"ngram.vocab_size={self.vocab_size} needs mlm.selection='ngram', got {selection!r}")
        if objective != "mlm":
            raise ConfigError(f"ngram.vocab_size={self.vocab_size} needs mlm.objective='mlm', got {objective!r}")


def corpus_lexicon(
    data_config: Any, options: NgramOptions, special: SpecialIds, continuation: np.ndarray | None
) -> NgramLexicon:
    """The lexicon of the packed train split: n-grams of candidate tokens (no specials, no padding) made of
    whole units as `ngram_mask` draws them (words when `continuation`, the `##` table, is given)."""
    rows = packed_split(data_config, "train")
    ids = jnp.asarray(rows["input_ids"])
    candidates = mlm_candidates(ids, special.as_tuple(), jnp.asarray(rows["segment_ids"]) > 0)
    word_starts = None if continuation is None else ~jnp.asarray(continuation)[ids]
    starts = unit_starts(candidates, word_starts)
    return ngram_lexicon(
        rows["input_ids"],
        options.max_n,
        options.vocab_size,
        valid=np.asarray(candidates),
        unit_starts=np.asarray(starts),
        min_count=options.min_count,
    )


def _lex_less(a: jax.Array, b: jax.Array) -> jax.Array:
    """Row-wise `a < b` in lexicographic order over the last axis."""
    differ = a != b
    first = jnp.argmax(differ, axis=-1)[..., None]
    at = jnp.take_along_axis(a, first, axis=-1)[..., 0] < jnp.take_along_axis(b, first, axis=-1)[..., 0]
    return jnp.any(differ, axis=-1) & at


def ngram_classes(rows: jax.Array, classes: jax.Array, queries: jax.Array) -> jax.Array:
    """The class of each query n-gram, -1 where it is not in the lexicon (exact; binary search, jit-able).

    Args:
      rows: int32 `[K, max_n]`, the lexicon in lexicographic order (`NgramLexicon.search_table`).
      classes: int32 `[K]`, the class of each row.
      queries: int32 `[..., max_n]`, n-grams padded with -1 like the rows.

    Returns:
      int32 `[...]`.
    """
    size = rows.shape[0]
    if size == 0:
        return jnp.full(queries.shape[:-1], -1, jnp.int32)
    lo = jnp.zeros(queries.shape[:-1], jnp.int32)
    hi = jnp.full(queries.shape[:-1], size, jnp.int32)
    for _ in range(int(np.ceil(np.log2(size + 1)))):  # the first row not below the query
        mid = (lo + hi) // 2
        below = _lex_less(rows[jnp.minimum(mid, size - 1)], queries) & (lo < hi)
        lo, hi = jnp.where(below, mid + 1, lo), jnp.where(below | (lo >= hi), hi, mid)
    at = jnp.minimum(lo, size - 1)
    found = (lo < size) & jnp.all(rows[at] == queries, axis=-1)
    return jnp.where(found, classes[at], -1).astype(jnp.int32)


def span_windows(ids: jax.Array, starts: jax.Array, lengths: jax.Array, max_n: int) -> jax.Array:
    """int32 `[B, L, max_n]`: at each span start of 2..`max_n` tokens, its ids padded with -1; all -1 elsewhere."""
    length = ids.shape[1]
    padded = jnp.pad(ids.astype(jnp.int32), ((0, 0), (0, max_n)), constant_values=-1)
    windows = jnp.stack([padded[:, j : j + length] for j in range(max_n)], axis=-1)
    inside = jnp.arange(max_n) < lengths[..., None]
    usable = starts & (lengths >= 2) & (lengths <= max_n)
    return jnp.where(inside & usable[..., None], windows, -1)


def ngram_targets(
    ids: jax.Array, chosen: jax.Array, rows: jax.Array, classes: jax.Array, max_n: int
) -> tuple[jax.Array, jax.Array]:
    """`(targets, multi)`, `[B, L]`: the lexicon class of each chosen span at its first position (-1: none,
    and everywhere else), and True at the first position of each span of 2 or more tokens.

    `ids` are the original (uncorrupted) ids; `chosen` a `ngram_mask` selection.
    """
    starts, lengths = chosen_spans(chosen)
    found = ngram_classes(rows, classes, span_windows(ids, starts, lengths, max_n))
    usable = starts & (lengths >= 2) & (lengths <= max_n)
    return jnp.where(usable, found, -1), starts & (lengths >= 2)


def init_ngram_head(rng: jax.Array, width: int, num_classes: int, std: float = 0.02) -> Params:
    """`{"dense": {kernel [D, D], bias}, "norm": {scale, bias}, "out": {kernel [D, K], bias}}`, normal(`std`)."""
    a, b = jax.random.split(rng)
    return {
        "dense": {"kernel": std * jax.random.normal(a, (width, width)), "bias": jnp.zeros((width,))},
        "norm": {"scale": jnp.ones((width,)), "bias": jnp.zeros((width,))},
        "out": {"kernel": std * jax.random.normal(b, (width, num_classes)), "bias": jnp.zeros((num_classes,))},
    }


def ngram_logits(params: Params, hidden: jax.Array, eps: float = 1e-12) -> jax.Array:
    """float32 `[..., K]` from hidden states `[..., D]`: dense, exact GELU, LayerNorm, dense (BERT's head shape)."""
    h = hidden.astype(jnp.float32) @ params["dense"]["kernel"] + params["dense"]["bias"]
    h = jax.nn.gelu(h, approximate=False)
    mean = jnp.mean(h, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(h - mean), axis=-1, keepdims=True)
    h = (h - mean) * jax.lax.rsqrt(var + eps) * params["norm"]["scale"] + params["norm"]["bias"]
    return h @ params["out"]["kernel"] + params["out"]["bias"]


def ngram_loss(
    params: Params, hidden: jax.Array, targets: jax.Array, eps: float = 1e-12
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Mean cross-entropy of the head at the positions with a class; 0 when there are none.

    Args:
      params: `init_ngram_head`'s pytree.
      hidden: `[B, P, D]`, the hidden states BERT's head reads, at some positions.
      targets: int `[B, P]`, `ngram_targets`'s classes there (-1: no n-gram target).

    Returns:
      The loss and `ngram_loss`, `ngram_accuracy` (argmax right, over the positions with a class).
    """
    has = targets >= 0
    logits = ngram_logits(params, hidden, eps)
    logp = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(logp, jnp.maximum(targets, 0)[..., None], axis=-1)[..., 0]
    count = jnp.maximum(jnp.sum(has), 1)
    loss = -jnp.sum(jnp.where(has, picked, 0.0)) / count
    right = (jnp.argmax(logits, axis=-1) == targets) & has
    return loss, {"ngram_loss": loss, "ngram_accuracy": jnp.sum(right) / count}


def ngram_coverage(targets: jax.Array, multi: jax.Array) -> jax.Array:
    """Share of the chosen spans of 2+ tokens (`multi`) that have a lexicon class (`targets` >= 0)."""
    return jnp.sum(targets >= 0) / jnp.maximum(jnp.sum(multi), 1)


@register_term("mlm")
@dataclasses.dataclass(frozen=True, eq=False)
class NgramTerm(Term):
    """ERNIE-Gram's term: the lexicon, the head's params, `ngram.weight` times its loss."""

    section = "ngram"
    options = NgramOptions

    opts: NgramOptions
    lexicon: NgramLexicon
    width: int
    init_std: float
    layer_norm_eps: float
    max_predictions: int

    @classmethod
    def build(cls, options: NgramOptions, base: Any) -> NgramTerm | None:
        if not options.enabled:
            return None
        o, cfg = base.options, base.model_config
        options.check_selection(o.selection, o.objective)
        lexicon = corpus_lexicon(base.data_config, options, base.special, base.continuation if o.whole_word else None)
        return cls(options, lexicon, cfg.width, cfg.init_std, cfg.layer_norm_eps, o.max_predictions)

    def init(self, rng: jax.Array, step: Step) -> Params:
        return init_ngram_head(rng, self.width, self.opts.vocab_size, self.init_std)

    def loss(self, step: Step) -> tuple[jax.Array, dict[str, jax.Array]]:
        """From the step's hidden states `out["hidden"]` `[B, L, D]`: the head at the spans' first positions
        that have a class, as many per row as the vocabulary head's (`at_predicted`)."""
        rows, classes = (jnp.asarray(a) for a in self.lexicon.search_table())
        ids = step.batch["input_ids"]
        classes_at, multi = ngram_targets(ids, step.mask.mask, rows, classes, self.opts.max_n)
        hidden, chosen = at_predicted(classes_at >= 0, self.max_predictions, step.out["hidden"], classes_at)
        loss, metrics = ngram_loss(step.params[self.section], hidden, chosen, self.layer_norm_eps)
        return self.opts.weight * loss, {**metrics, "ngram_coverage": ngram_coverage(classes_at, multi)}


__all__ = [
    "NGRAM_HEAD",
    "NgramOptions",
    "NgramTerm",
    "corpus_lexicon",
    "init_ngram_head",
    "ngram_classes",
    "ngram_coverage",
    "ngram_logits",
    "ngram_loss",
    "ngram_targets",
    "span_windows",
]
