"""BERT masked language modeling (Devlin et al. 2019; Wettig et al. 2023, "Should You Mask 15%?").

Choose `mlm.rate` of the non-special tokens (uniformly, in spans, in whole n-grams, or
preferring rare tokens); of those 80% become `[MASK]`, 10% a random token, 10% stay
(`mmjax.masking.text.bert_corruption`); cross entropy on the chosen positions only, with
the output projection tied to the word embeddings. Batches are packed text rows of the
`text` data kind (`mmjax.data.text`).

`mlm.selection="loss_weighted"` is WSBERT's loss-based weighted sampling (Zhang et al. 2023,
"Weighted Sampling for Masked Language Modeling"): the method keeps `params["token_loss"]`
`[V]`, a running mean (`mlm.loss_momentum`) of each token id's training cross-entropy, updated
by `after_step` from the step's chosen positions, and chooses positions with probability
proportional to `token_loss[id] ** mlm.weight_alpha`: tokens the model still gets wrong are
masked more often. The table starts at ones (uniform BERT selection); a corruption drawn
without the table (the held-out evaluation) is uniform. `frequency_weighted` is WSBERT's other,
static strategy.

`mlm.objective` compares MLM with causal language modeling on the same encoder (Gisserot-Boukhlef
et al. 2025, "Should We Still Pretrain Encoders with Masked Language Modeling?"): `clm` trains it
with causal attention to predict each next token of its segment, `clm_then_mlm` is their
biphasic schedule, CLM for the first `mlm.clm_share` of `train.steps`, then MLM (the switch
reads `params["steps_seen"]`, counted by `after_step`). The held-out evaluation is masked-token
prediction with bidirectional attention in every case.

`model.decoder_depth` > 0 is MAE-LM (`mmjax.models.bert`): the positions corrupted to `[MASK]`
are excluded from the encoder (the 10% random and 10% kept tokens stay in it, as real tokens),
and a shallow decoder predicts every chosen position.

`ngram.vocab_size` > 0 is ERNIE-Gram's explicit n-gram prediction (`mmjax.methods.ngram_targets`,
with `mlm.selection=ngram`): a lexicon of the K most frequent n-grams of the train split is
built with the method, and a small head (`params["ngram_head"]`) predicts each masked n-gram's
lexicon class from the hidden state at its first position, next to the usual prediction of
every masked token. ERNIE-Gram's single `[MASK]` per n-gram and its enhanced relative attention
are not implemented (see `NgramOptions`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mmjax.config import dataclass_from_config, section_config
from mmjax.data.pipeline import padded_batches
from mmjax.data.text import (
    NgramLexicon,
    SpecialIds,
    continuation_table,
    load_tokenizer,
    special_ids,
    text_data,
    token_counts,
)
from mmjax.masking.text import (
    MLMCorruption,
    bert_corruption,
    frequency_weighted_mask,
    mlm_candidates,
    ngram_mask,
    span_mask,
    token_weighted_mask,
)
from mmjax.methods.ngram_targets import (
    NGRAM_HEAD,
    NgramOptions,
    corpus_lexicon,
    init_ngram_head,
    ngram_coverage,
    ngram_head_axes,
    ngram_loss,
    ngram_targets,
)
from mmjax.methods.protocol import STATE_INPUTS, Batch, Params
from mmjax.methods.registry import register_method
from mmjax.models.bert import BERT_SIZES, BertConfig, BertMLM, pool_text

SELECTIONS = ("random", "span", "ngram", "frequency_weighted", "loss_weighted")
OBJECTIVES = ("mlm", "clm", "clm_then_mlm")
STEPS_SEEN = "steps_seen"  # params entry of `clm_then_mlm`: optimizer steps taken (float32 [])
LOSS_TABLE = "token_loss"  # params entry of `loss_weighted`: running cross-entropy per token id [V]


def bert_section(size: str | None = "base") -> ml_collections.ConfigDict:
    """The `model` section: `size` in `BERT_SIZES` sets width/depth/heads/mlp_dim, else the explicit fields.

    `vocab_size` None takes the tokenizer's size.
    """
    fields = {f.name: f.default for f in dataclasses.fields(BertConfig)}
    fields.update(size=size, vocab_size=None)
    return ml_collections.ConfigDict(fields, type_safe=False)


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config: BERT-base, 15% masking, 80/10/10, pydoc text."""
    return ml_collections.ConfigDict(
        {
            "method": "mlm",
            "model": bert_section(),
            "mlm": section_config(MLMOptions),
            "ngram": section_config(NgramOptions),
            "data": text_data(),
        }
    )


@dataclasses.dataclass(frozen=True)
class MLMOptions:
    """The `mlm` config section.

    selection: `random` (BERT), `span` (SpanBERT, geometric lengths `span_p`, `max_span`),
      `ngram` (whole n-grams up to `max_ngram`), `frequency_weighted` (weight
      `(count + 1) ** -weight_alpha`), `loss_weighted` (weight `token_loss ** weight_alpha`, the
      running per-token training loss, momentum `loss_momentum`).
    rate: fraction of non-special tokens chosen; mask_prob / random_prob: the 80/10/10 split.
    exact: choose exactly `round(rate * n)` (BERT) rather than each token with probability `rate` (HF collator).
    whole_word: span / n-gram units are whole words (a word = a token and its `##` continuations).
    max_predictions: > 0 computes the vocabulary head at most at that many chosen positions per
      row (BERT's `max_predictions_per_seq`; saves memory at large vocabularies); 0 = all positions.
    objective: `mlm`, `clm` (next-token prediction, causal attention) or `clm_then_mlm` (CLM for
      the first `clm_share` of `train.steps`, then MLM).
    """

    selection: str = "random"
    rate: float = 0.15
    mask_prob: float = 0.8
    random_prob: float = 0.1
    exact: bool = True
    whole_word: bool = True
    span_p: float = 0.2
    max_span: int = 10
    max_ngram: int = 3
    weight_alpha: float = 0.5
    loss_momentum: float = 0.99
    max_predictions: int = 0
    objective: str = "mlm"
    clm_share: float = 0.5

    def __post_init__(self):
        if self.selection not in SELECTIONS:
            raise ValueError(f"mlm.selection must be one of {SELECTIONS}, got {self.selection!r}")
        if not 0.0 < self.rate <= 1.0:
            raise ValueError(f"mlm.rate must be in (0, 1], got {self.rate}")
        if self.mask_prob < 0 or self.random_prob < 0 or self.mask_prob + self.random_prob > 1:
            raise ValueError(
                f"mlm.mask_prob + mlm.random_prob must be in [0, 1], got {self.mask_prob} + {self.random_prob}"
            )
        if not 0.0 <= self.loss_momentum < 1.0:
            raise ValueError(f"mlm.loss_momentum must be in [0, 1), got {self.loss_momentum}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"mlm.objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if not 0.0 < self.clm_share < 1.0:
            raise ValueError(f"mlm.clm_share must be in (0, 1), got {self.clm_share}")
        if self.objective != "mlm" and self.selection == "loss_weighted":
            raise ValueError(f"mlm.selection='loss_weighted' needs mlm.objective='mlm', got {self.objective!r}")
        if self.max_predictions < 0:
            raise ValueError(f"mlm.max_predictions must be >= 0 (0 = all positions), got {self.max_predictions}")


def bert_config_from_section(model: Any, vocab_size: int) -> BertConfig:
    """`BertConfig` from the `model` section; a `size` overrides width/depth/heads/mlp_dim."""
    values = model.to_dict() if hasattr(model, "to_dict") else dict(model)
    size = values.pop("size", None)
    if size is not None:
        if size not in BERT_SIZES:
            raise ValueError(f"model.size={size!r}: expected one of {sorted(BERT_SIZES)} or None")
        width, depth, heads = BERT_SIZES[size]
        values.update(width=width, depth=depth, heads=heads, mlp_dim=4 * width)
    if values.get("vocab_size") is None:
        values["vocab_size"] = vocab_size
    elif values["vocab_size"] < vocab_size:
        raise ValueError(f"model.vocab_size={values['vocab_size']} is smaller than the tokenizer's {vocab_size} tokens")
    return dataclass_from_config(BertConfig, values, "model")


@dataclasses.dataclass(frozen=True, eq=False)
class MLM:
    """The MLM method; batches are dicts with `input_ids`, `segment_ids`, `positions` int32 `[B, L]`.

    `vocab_size` is the tokenizer's (random replacements come from it); the model's may be larger.
    `counts` `[V]` are train-split token counts, `continuation` `[V]` marks `##` pieces; `lexicon`
    is ERNIE-Gram's n-gram lexicon (`ngram.vocab_size` > 0), None otherwise.
    """

    model_config: BertConfig
    options: MLMOptions
    special: SpecialIds
    vocab_size: int
    counts: np.ndarray
    continuation: np.ndarray
    total_steps: int = 1  # train.steps: where `clm_then_mlm` switches
    ngram: NgramOptions = NgramOptions()
    lexicon: NgramLexicon | None = None

    input_key = "input_ids"  # the prepared batch entry `features` reads (export)

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> MLM:
        options = dataclass_from_config(MLMOptions, config.mlm, "mlm")
        ngram = dataclass_from_config(NgramOptions, config.get("ngram") or {}, "ngram")
        ngram.check_selection(options.selection, options.objective)
        tokenizer = load_tokenizer(config.data)
        vocab = tokenizer.get_vocab_size()
        model_config = bert_config_from_section(config.model, vocab)
        if config.data.seq_len > model_config.max_len:
            raise ValueError(f"data.seq_len={config.data.seq_len} exceeds model.max_len={model_config.max_len}")
        counts = token_counts(config.data, vocab) if options.selection == "frequency_weighted" else np.zeros(vocab)
        if options.objective != "mlm" and model_config.decoder_depth:
            raise ValueError(
                f"mlm.objective={options.objective!r} with MAE-LM's decoder: expected model.decoder_depth=0"
            )
        steps = int(config.train.steps) if "train" in config else 1
        continuation = continuation_table(tokenizer, vocab)
        special = special_ids(tokenizer)
        lexicon = None
        if ngram.enabled:
            lexicon = corpus_lexicon(config.data, ngram, special, continuation if options.whole_word else None)
        return cls(model_config, options, special, vocab, counts, continuation, steps, ngram, lexicon)

    @property
    def model(self) -> BertMLM:
        return BertMLM(self.model_config)

    @property
    def weighs_by_loss(self) -> bool:
        return self.options.selection == "loss_weighted"

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        ids = batch["input_ids"]
        params = nn.meta.unbox(self.model.init(rng, ids, batch.get("segment_ids"), batch.get("positions"))["params"])
        if self.weighs_by_loss:
            params = {**params, LOSS_TABLE: jnp.ones((self.vocab_size,), jnp.float32)}
        if self.options.objective == "clm_then_mlm":
            params = {**params, STEPS_SEEN: jnp.zeros((), jnp.float32)}
        if self.ngram.enabled:
            params = {**params, NGRAM_HEAD: self._init_ngram_head(jax.random.fold_in(rng, 1))}
        return params

    def _init_ngram_head(self, rng: jax.Array) -> Params:
        cfg = self.model_config
        return init_ngram_head(rng, cfg.width, self.ngram.vocab_size, cfg.init_std)

    def param_axes(self) -> Params:
        ids = jax.ShapeDtypeStruct((1, 2), jnp.int32)
        shapes = jax.eval_shape(self.model.init, jax.random.key(0), ids)
        axes = nn.get_partition_spec(shapes)["params"]
        if self.weighs_by_loss:
            axes = {**axes, LOSS_TABLE: jax.sharding.PartitionSpec()}
        if self.options.objective == "clm_then_mlm":
            axes = {**axes, STEPS_SEEN: jax.sharding.PartitionSpec()}
        if self.ngram.enabled:
            axes = {**axes, NGRAM_HEAD: ngram_head_axes(jax.eval_shape(self._init_ngram_head, jax.random.key(0)))}
        return axes

    def trainable(self, params: Params) -> Params:
        """Everything but `loss_weighted`'s running loss table and the step count."""
        frozen = (LOSS_TABLE, STEPS_SEEN)
        return {name: jax.tree.map(lambda _, t=name not in frozen: t, value) for name, value in params.items()}

    def after_step(self, params: Params, state_inputs: Any, step: jax.Array) -> Params:
        """`loss_weighted`: move each seen token id's running loss towards this step's mean; nothing otherwise.

        `state_inputs`: `{"sum": [V], "count": [V]}` cross-entropy sums and counts per target id.
        """
        del step
        if STEPS_SEEN in params:
            params = {**params, STEPS_SEEN: params[STEPS_SEEN] + 1}
        if not self.weighs_by_loss or state_inputs is None:
            return params
        m, table = self.options.loss_momentum, params[LOSS_TABLE]
        mean = state_inputs["sum"] / jnp.maximum(state_inputs["count"], 1.0)
        return {**params, LOSS_TABLE: jnp.where(state_inputs["count"] > 0, m * table + (1 - m) * mean, table)}

    def corrupt(
        self, rng: jax.Array, input_ids: jax.Array, segment_ids: jax.Array, token_loss: jax.Array | None = None
    ) -> MLMCorruption:
        """Choose positions per `mlm.selection` and corrupt them 80/10/10; all `[B, L]`.

        `token_loss` `[V]`: `loss_weighted`'s running loss table (None: uniform selection).
        """
        o = self.options
        k_select, k_corrupt = jax.random.split(rng)
        real = segment_ids > 0
        candidates = mlm_candidates(input_ids, self.special.as_tuple(), real)
        word_starts = ~jnp.asarray(self.continuation)[input_ids] if o.whole_word else None
        if o.selection == "random":
            chosen = None
        elif o.selection == "span":
            chosen = span_mask(k_select, candidates, o.rate, p=o.span_p, max_span=o.max_span, word_starts=word_starts)
        elif o.selection == "ngram":
            chosen = ngram_mask(k_select, candidates, o.rate, max_n=o.max_ngram, word_starts=word_starts)
        elif o.selection == "loss_weighted":
            log_weights = jnp.zeros((self.vocab_size,)) if token_loss is None else o.weight_alpha * jnp.log(token_loss)
            chosen = token_weighted_mask(k_select, input_ids, candidates, log_weights[: self.vocab_size], o.rate)
        else:
            counts = jnp.asarray(self.counts, jnp.float32)
            chosen = frequency_weighted_mask(k_select, input_ids, candidates, counts, o.rate, alpha=o.weight_alpha)
        return bert_corruption(
            k_corrupt,
            input_ids,
            vocab_size=self.vocab_size,
            mask_token_id=self.special.mask,
            rate=o.rate,
            special_ids=self.special.as_tuple(),
            attention_mask=real,
            chosen=None if chosen is None else chosen.mask,
            mask_prob=o.mask_prob,
            random_prob=o.random_prob,
            exact=o.exact,
        )

    def predict(
        self, params: Params, batch: Batch, corruption: MLMCorruption, rng: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`(logits [B, P, V], targets [B, P], weights [B, P])` at the chosen positions.

        `P = L`, or `mlm.max_predictions` (the first chosen positions of each row); dropout when `rng` is given.
        """
        hidden = self.hidden_states(params, batch, corruption, rng)
        return self.token_predictions(params, batch, corruption, hidden)

    def hidden_states(
        self, params: Params, batch: Batch, corruption: MLMCorruption, rng: jax.Array | None = None
    ) -> jax.Array:
        """`[B, L, D]`: what the vocabulary head reads (the encoder's output, through MAE-LM's decoder if any)."""
        deterministic = rng is None or self.model_config.dropout == 0.0
        rngs = {} if deterministic else {"dropout": rng}
        exclude = corruption.action == 1 if self.model_config.decoder_depth else None
        hidden = self.model.apply(
            {"params": params},
            corruption.input_ids,
            batch["segment_ids"],
            batch.get("positions"),
            deterministic=deterministic,
            rngs=rngs,
            exclude=exclude,
            method=BertMLM.encode,
        )
        hidden = self.model.apply(
            {"params": params},
            hidden,
            corruption.input_ids,
            exclude,
            batch["segment_ids"],
            batch.get("positions"),
            deterministic=deterministic,
            rngs=rngs,
            method=BertMLM.decode,
        )
        return hidden

    def features(self, params: Params, inputs: jax.Array, pool: str = "cls") -> jax.Array:
        """Encoder features of token rows int `[B, L]`, one text per row (`[CLS] ... [SEP]`, then padding).

        `cls` -> `[B, D]` the first token's output; `mean` -> `[B, D]` the mean over the non-padding
        tokens; `tokens` -> `[B, L, D]` (padding rows meaningless). Padding is segment 0, which no token
        attends to; no dropout.
        """
        real = inputs != self.special.pad
        hidden = self.model.apply({"params": params}, inputs, real.astype(jnp.int32), method=BertMLM.encode)
        return pool_text(hidden, real, pool)

    def text_encoder(self, params: Params) -> tuple[BertConfig, Params]:
        """The `BertMLM` whose encoder `features` runs (the MLM head's params included), for fine-tuning."""
        return self.model_config, params

    def token_predictions(
        self, params: Params, batch: Batch, corruption: MLMCorruption, hidden: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`predict`'s outputs from `hidden_states`."""
        hidden, targets, weights = self.at_predicted(corruption.mask, hidden, batch["input_ids"], corruption.mask)
        logits = self.model.apply({"params": params}, hidden, method=BertMLM.logits)
        return logits, targets, weights

    def at_predicted(self, chosen: jax.Array, *arrays: jax.Array) -> tuple[jax.Array, ...]:
        """`[B, L, ...]` arrays at the positions the head predicts: all, or the first `mlm.max_predictions` chosen."""
        if not self.options.max_predictions:
            return arrays
        order = jnp.argsort(~chosen, axis=1, stable=True)[:, : self.options.max_predictions]
        return tuple(jnp.take_along_axis(a, order.reshape(order.shape + (1,) * (a.ndim - 2)), axis=1) for a in arrays)

    def causal_loss(
        self, params: Params, batch: Batch, rng: jax.Array, train: bool = True
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """CLM: mean cross entropy of each next token of the same segment, under causal attention.

        Metrics: next-token accuracy (`accuracy`) and `mask_rate` 0 (nothing is masked).
        """
        ids, segments = batch["input_ids"], batch["segment_ids"]
        deterministic = not train or self.model_config.dropout == 0.0
        rngs = {} if deterministic else {"dropout": rng}
        hidden = self.model.apply(
            {"params": params},
            ids,
            segments,
            batch.get("positions"),
            deterministic=deterministic,
            rngs=rngs,
            causal=True,
            method=BertMLM.encode,
        )
        logits = self.model.apply({"params": params}, hidden[:, :-1], method=BertMLM.logits)
        targets = ids[:, 1:]
        weights = (segments[:, 1:] == segments[:, :-1]) & (segments[:, 1:] > 0)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
        count = jnp.maximum(jnp.sum(weights), 1)
        correct = (jnp.argmax(logits, axis=-1) == targets) & weights
        loss = jnp.sum(jnp.where(weights, ce, 0.0)) / count
        return loss, {"accuracy": jnp.sum(correct) / count, "mask_rate": jnp.zeros((), jnp.float32)}

    def loss(
        self, params: Params, batch: Batch, rng: jax.Array, train: bool = True
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """`mlm.objective`'s loss: MLM (below), CLM (`causal_loss`) or CLM then MLM (`clm_phase` 1 while CLM)."""
        objective = self.options.objective
        if objective == "clm":
            return self.causal_loss(params, batch, rng, train)
        if objective == "mlm":
            return self.masked_loss(params, batch, rng, train)
        in_clm = params[STEPS_SEEN] < self.options.clm_share * self.total_steps
        loss, metrics = jax.lax.cond(
            in_clm,
            lambda: self.causal_loss(params, batch, rng, train),
            lambda: self.masked_loss(params, batch, rng, train),
        )
        return loss, {**metrics, "clm_phase": in_clm.astype(jnp.float32)}

    def masked_loss(
        self, params: Params, batch: Batch, rng: jax.Array, train: bool = True
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Mean cross entropy over the chosen positions; metrics: masked-token accuracy, chosen fraction.

        With `ngram.vocab_size` > 0 adds `ngram.weight` times the n-gram head's cross-entropy
        (`ngram_targets.ngram_loss`; metrics `mlm_loss`, the token term, and the `ngram_*` ones).
        """
        k_corrupt, k_dropout = jax.random.split(rng)
        table = params.get(LOSS_TABLE) if self.weighs_by_loss else None
        corruption = self.corrupt(k_corrupt, batch["input_ids"], batch["segment_ids"], table)
        hidden = self.hidden_states(params, batch, corruption, k_dropout if train else None)
        logits, targets, weights = self.token_predictions(params, batch, corruption, hidden)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
        count = jnp.maximum(jnp.sum(weights), 1)
        loss = jnp.sum(jnp.where(weights, ce, 0.0)) / count
        correct = (jnp.argmax(logits, axis=-1) == targets) & weights
        real = mlm_candidates(batch["input_ids"], self.special.as_tuple(), batch["segment_ids"] > 0)
        metrics = {
            "accuracy": jnp.sum(correct) / count,
            "mask_rate": jnp.sum(corruption.mask) / jnp.maximum(jnp.sum(real), 1),
        }
        if self.lexicon is not None:
            term, extra = self.ngram_term(params, batch, corruption, hidden)
            metrics.update(mlm_loss=loss, **extra)
            loss = loss + self.ngram.weight * term
        if table is not None:
            ids, w = targets.reshape(-1), weights.reshape(-1).astype(jnp.float32)
            per_id = jax.lax.stop_gradient(jnp.where(weights, ce, 0.0)).reshape(-1)
            metrics[STATE_INPUTS] = {
                "sum": jnp.zeros((self.vocab_size,)).at[ids].add(per_id, mode="drop"),
                "count": jnp.zeros((self.vocab_size,)).at[ids].add(w, mode="drop"),
            }
        return loss, metrics

    def ngram_term(
        self, params: Params, batch: Batch, corruption: MLMCorruption, hidden: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """ERNIE-Gram's n-gram loss and its metrics, from the hidden states `[B, L, D]` of one corruption.

        The head runs at the spans' first positions that have a class, as many per row as the
        vocabulary head's (`at_predicted`).
        """
        rows, classes = (jnp.asarray(a) for a in self.lexicon.search_table())
        classes_at, multi = ngram_targets(batch["input_ids"], corruption.mask, rows, classes, self.ngram.max_n)
        at, chosen_classes = self.at_predicted(classes_at >= 0, hidden, classes_at)
        loss, metrics = ngram_loss(params[NGRAM_HEAD], at, chosen_classes, self.model_config.layer_norm_eps)
        return loss, {**metrics, "ngram_coverage": ngram_coverage(classes_at, multi)}

    def fill_mask(self, params: Params, tokenizer: Any, text: str, top_k: int = 5) -> list[list[tuple[str, float]]]:
        """The `top_k` most likely tokens (and probabilities) at each `[MASK]` of `text`, in order."""
        ids = [self.special.cls, *tokenizer.encode(text, add_special_tokens=False).ids, self.special.sep]
        where = [i for i, t in enumerate(ids) if t == self.special.mask]
        if not where:
            raise ValueError(f"fill_mask: the text has no [MASK] token: {text!r}")
        if len(ids) > self.model_config.max_len:
            raise ValueError(f"fill_mask: {len(ids)} tokens exceed model.max_len={self.model_config.max_len}")
        ids = jnp.asarray([ids], jnp.int32)
        exclude = ids == self.special.mask if self.model_config.decoder_depth else None
        logits = jax.jit(self.model.apply)({"params": params}, ids, jnp.ones_like(ids), exclude=exclude)
        logits = logits[0, jnp.asarray(where)]
        probs = jax.nn.softmax(logits[:, : self.vocab_size], axis=-1)
        top_p, top_i = jax.device_get(jax.lax.top_k(probs, top_k))
        return [
            [(tokenizer.id_to_token(int(i)), float(p)) for p, i in zip(ps, is_, strict=True)]
            for ps, is_ in zip(top_p, top_i, strict=True)
        ]

    def pseudo_log_likelihood(
        self, params: Params, tokenizer: Any, texts: list[str], batch_size: int = 64
    ) -> np.ndarray:
        """Each text's pseudo-log-likelihood (Salazar et al. 2020): the sum over its tokens of
        `log p(token | the text with that token alone masked)`, in nats; float64 `[len(texts)]`.

        Every token of a text is masked in turn, `batch_size` copies per forward pass; texts are
        padded to a multiple of `PLL_BUCKET` tokens (padding is segment 0, which no token attends to).
        Used to rank sequences (higher is more likely to the model).
        """
        mask_id, vocab = self.special.mask, self.vocab_size

        @jax.jit
        def token_log_probs(params, rows, segments, where, targets):
            exclude = rows == mask_id if self.model_config.decoder_depth else None
            logits = self.model.apply({"params": params}, rows, segments, exclude=exclude)
            at = jnp.take_along_axis(logits, where[:, None, None], axis=1)[:, 0, :vocab]
            return jnp.take_along_axis(jax.nn.log_softmax(at, axis=-1), targets[:, None], axis=1)[:, 0]

        scores = np.zeros(len(texts))
        for t, text in enumerate(texts):
            ids = np.asarray(
                [self.special.cls, *tokenizer.encode(text, add_special_tokens=False).ids, self.special.sep]
            )
            if len(ids) > self.model_config.max_len:
                raise ValueError(
                    f"pseudo_log_likelihood: text {t} has {len(ids)} tokens; model.max_len={self.model_config.max_len}"
                )
            if len(ids) < 3:
                continue  # no token between [CLS] and [SEP]: log 1
            length = min(-(-len(ids) // PLL_BUCKET) * PLL_BUCKET, self.model_config.max_len)
            rows, segments = masked_one_at_a_time(ids, mask_id, length)
            columns = {
                "rows": rows,
                "segments": segments,
                "where": np.arange(1, len(ids) - 1, dtype=np.int32),
                "targets": ids[1:-1].astype(np.int32),
            }
            chunks = ({k: v[i : i + batch_size] for k, v in columns.items()} for i in range(0, len(rows), batch_size))
            for batch, n in padded_batches(chunks, batch_size):  # one shape per length
                got = token_log_probs(params, **batch)
                scores[t] += float(np.sum(np.asarray(got, np.float64)[:n]))
        return scores


PLL_BUCKET = 16  # texts are padded to a multiple of this length, so few lengths compile


def masked_one_at_a_time(ids: np.ndarray, mask_id: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """`(rows [n - 2, length], segments [n - 2, length])`: row k is `ids` (with `[CLS]` first and `[SEP]`
    last) padded to `length`, its token `k + 1` replaced by `mask_id`; padding is segment 0."""
    n = len(ids)
    rows = np.zeros((n - 2, length), np.int32)
    rows[:, :n] = ids
    rows[np.arange(n - 2), np.arange(1, n - 1)] = mask_id
    segments = np.zeros_like(rows)
    segments[:, :n] = 1
    return rows, segments


@register_method("mlm")
def build_mlm(config: ml_collections.ConfigDict) -> MLM:
    return MLM.from_config(config)
