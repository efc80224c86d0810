"""BERT masked language modeling (Devlin et al. 2019; Wettig et al. 2023, "Should You Mask 15%?").

Choose `mlm.rate` of the non-special tokens (uniformly, in spans, in whole n-grams, or
preferring rare tokens); of those 80% become `[MASK]`, 10% a random token, 10% stay
(`mmjax.masking.text.bert_corruption`); cross entropy on the chosen positions only, with
the output projection tied to the word embeddings. Batches are packed text rows of the
`text` data kind (`mmjax.data.text`).

Variants are add-on terms (`mmjax.methods.terms`), each in its own file: WSBERT (`loss_weighted.py`,
`mlm.selection=loss_weighted`), CLM (`causal_lm.py`, `mlm.objective=clm` or `clm_then_mlm`),
ERNIE-Gram (`ngram_targets.py`, section `ngram`). `model.decoder_depth` > 0 is MAE-LM
(`mmjax.models.bert`: `[MASK]` positions skip the encoder, a shallow decoder predicts).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.config import ConfigError, dataclass_from_config, knob, section_config
from mmjax.data.text import SpecialIds, continuation_table, load_tokenizer, special_ids, text_data, token_counts
from mmjax.losses import masked_cross_entropy
from mmjax.masking.text import (
    MLMCorruption,
    at_predicted,
    bert_corruption,
    chosen_positions,
    mlm_candidates,
)
from mmjax.methods import terms as addons
from mmjax.methods.mlm_scoring import ScoresText
from mmjax.methods.protocol import Batch, Params
from mmjax.methods.registry import register_method
from mmjax.models.bert import BertConfig, BertMLM, bert_config_from_section, bert_section, pool_text

SELECTIONS = ("random", "span", "ngram", "frequency_weighted", "loss_weighted")
OBJECTIVES = ("mlm", "clm", "clm_then_mlm")


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config: BERT-base, 15% masking, 80/10/10, pydoc text."""
    return ml_collections.ConfigDict(
        {
            "method": "mlm",
            "model": bert_section(),
            "mlm": section_config(MLMOptions),
            **addons.terms_sections("mlm"),
            "data": text_data(),
        }
    )


@dataclasses.dataclass(frozen=True)
class MLMOptions:
    """`mlm`: BERT's selection and corruption, and the objective (`clm` ones: `causal_lm.py`)."""

    selection: str = knob(
        "random",
        "random (BERT), span (SpanBERT), ngram (whole n-grams), frequency_weighted ((count + 1) ** -weight_alpha), "
        "loss_weighted (WSBERT: running loss ** weight_alpha, loss_weighted.py)",
        choices=SELECTIONS,
    )
    rate: float = knob(0.15, "fraction of the non-special tokens chosen", low=0, high=1, low_open=True)
    mask_prob: float = knob(0.8, "share of the chosen tokens that become [MASK] (BERT's 80)", low=0, high=1)
    random_prob: float = knob(0.1, "share that become a random token (BERT's 10); the rest stay", low=0, high=1)
    exact: bool = knob(True, "choose exactly round(rate * n) (BERT), else each token with probability rate (HF)")
    whole_word: bool = knob(True, "span / n-gram units are whole words (a token and its ## continuations)")
    span_p: float = knob(0.2, "span: geometric parameter of the span lengths", low=0, high=1, low_open=True)
    max_span: int = knob(10, "span: longest span", low=1)
    max_ngram: int = knob(3, "ngram: longest n-gram", low=1)
    weight_alpha: float = knob(0.5, "exponent of frequency_weighted / loss_weighted selection", low=0)
    max_predictions: int = knob(
        0, "the vocabulary head runs at most at this many chosen positions per row (BERT's); 0 = all", low=0
    )
    objective: str = knob("mlm", "mlm, clm (next token, causal attention) or clm_then_mlm", choices=OBJECTIVES)
    clm_share: float = knob(
        0.5, "clm_then_mlm: share of train.steps trained with CLM", low=0, high=1, low_open=True, high_open=True
    )

    def __post_init__(self):
        if self.mask_prob + self.random_prob > 1:
            raise ConfigError(
                f"mlm.mask_prob + mlm.random_prob must be in [0, 1], got {self.mask_prob} + {self.random_prob}"
            )


@dataclasses.dataclass(frozen=True, eq=False)
class MLM(addons.WithTerms, ScoresText):
    """The MLM method; batches are dicts with `input_ids`, `segment_ids`, `positions` int32 `[B, L]`.

    `vocab_size` is the tokenizer's (the model's may be larger); `counts` `[V]` are train-split token
    counts, `continuation` `[V]` marks `##` pieces; `data_config` is the `data` section (ERNIE-Gram's lexicon).
    """

    model_config: BertConfig
    options: MLMOptions
    special: SpecialIds
    vocab_size: int
    counts: np.ndarray
    continuation: np.ndarray
    total_steps: int = 1  # train.steps: where `clm_then_mlm` switches
    data_config: Any = None
    terms: tuple[addons.Term, ...] = ()

    input_key = "input_ids"  # the prepared batch entry `features` reads (export)

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> MLM:
        options = dataclass_from_config(MLMOptions, config.mlm, "mlm")
        tokenizer = load_tokenizer(config.data)
        vocab = tokenizer.get_vocab_size()
        model_config = bert_config_from_section(config.model, vocab)
        if config.data.seq_len > model_config.max_len:
            raise ValueError(f"data.seq_len={config.data.seq_len} exceeds model.max_len={model_config.max_len}")
        counts = token_counts(config.data, vocab) if options.selection == "frequency_weighted" else np.zeros(vocab)
        steps = int(config.train.steps) if "train" in config else 1
        continuation = continuation_table(tokenizer, vocab)
        base = cls(model_config, options, special_ids(tokenizer), vocab, counts, continuation, steps, config.data)
        return dataclasses.replace(base, terms=addons.build_terms("mlm", config, base))

    @property
    def model(self) -> BertMLM:
        return BertMLM(self.model_config)

    def init_step(self, rng: jax.Array, batch: Batch) -> tuple[Params, addons.Step]:
        """The model's boxed params; the terms' init reads nothing else of the step."""
        ids = batch["input_ids"]
        params = self.model.init(rng, ids, batch.get("segment_ids"), batch.get("positions"))["params"]
        return params, addons.Step(batch, None, None, None, None, {}, params)

    def abstract_batch(self) -> Batch:
        return {"input_ids": jax.ShapeDtypeStruct((1, 2), jnp.int32)}

    def corrupt(
        self, rng: jax.Array, input_ids: jax.Array, segment_ids: jax.Array, log_weights: jax.Array | None = None
    ) -> MLMCorruption:
        """Choose positions per `mlm.selection` and corrupt them 80/10/10; all `[B, L]`.

        `log_weights` `[V]`: `loss_weighted`'s per-id log-odds (WSBERT's term; None: uniform selection).
        """
        o = self.options
        k_select, k_corrupt = jax.random.split(rng)
        real = segment_ids > 0
        candidates = mlm_candidates(input_ids, self.special.as_tuple(), real)
        word_starts = ~jnp.asarray(self.continuation)[input_ids] if o.whole_word else None
        counts = jnp.asarray(self.counts, jnp.float32)  # [V], the tokenizer's ids
        log_weights = jnp.zeros((self.vocab_size,)) if log_weights is None else log_weights[: self.vocab_size]
        kw = dict(span_p=o.span_p, max_span=o.max_span, max_ngram=o.max_ngram, alpha=o.weight_alpha, counts=counts)
        chosen = chosen_positions(
            o.selection, k_select, input_ids, candidates, o.rate, word_starts=word_starts, log_weights=log_weights, **kw
        )
        return bert_corruption(
            k_corrupt,
            input_ids,
            vocab_size=self.vocab_size,
            mask_token_id=self.special.mask,
            rate=o.rate,
            special_ids=self.special.as_tuple(),
            attention_mask=real,
            chosen=chosen,
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
        args = (batch["segment_ids"], batch.get("positions"))
        kw = dict(deterministic=deterministic, rngs=rngs)
        hidden = self.model.apply(
            {"params": params}, corruption.input_ids, *args, exclude=exclude, method=BertMLM.encode, **kw
        )
        return self.model.apply(
            {"params": params}, hidden, corruption.input_ids, exclude, *args, method=BertMLM.decode, **kw
        )

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
        chosen = corruption.mask
        hidden, targets, weights = at_predicted(
            chosen, self.options.max_predictions, hidden, batch["input_ids"], chosen
        )
        logits = self.model.apply({"params": params}, hidden, method=BertMLM.logits)
        return logits, targets, weights

    def loss(
        self, params: Params, batch: Batch, rng: jax.Array, train: bool = True
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """MLM's loss (`masked_loss`), or the objective a term replaces it with (CLM, `causal_lm.py`)."""
        replaced = addons.objective(self.terms, self, params, batch, rng, train)
        return self.masked_loss(params, batch, rng, train) if replaced is None else replaced

    def masked_loss(
        self, params: Params, batch: Batch, rng: jax.Array, train: bool = True
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Mean cross entropy over the chosen positions, plus the terms'; metrics: masked-token accuracy,
        chosen fraction (and `mlm_loss`, the token term, when a term adds to the loss)."""
        k_corrupt, k_dropout = jax.random.split(rng)
        given = addons.mask_inputs(self.terms, self, params, batch)
        corruption = self.corrupt(k_corrupt, batch["input_ids"], batch["segment_ids"], given.get("log_weights"))
        hidden = self.hidden_states(params, batch, corruption, k_dropout if train else None)
        logits, targets, weights = self.token_predictions(params, batch, corruption, hidden)
        loss, accuracy = masked_cross_entropy(logits, targets, weights)
        real = mlm_candidates(batch["input_ids"], self.special.as_tuple(), batch["segment_ids"] > 0)
        metrics = {"accuracy": accuracy, "mask_rate": jnp.sum(corruption.mask) / jnp.maximum(jnp.sum(real), 1)}
        step = addons.Step(batch, corruption, weights, logits, targets, {"hidden": hidden}, params)
        return addons.add_terms(self.terms, loss, metrics, step, base_name="mlm_loss")


@register_method("mlm", protocols=("text_mlm",))
def build_mlm(config: ml_collections.ConfigDict) -> MLM:
    return MLM.from_config(config)
