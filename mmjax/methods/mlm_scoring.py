"""Scoring text with a masked language model: `fill_mask` (the top tokens at each `[MASK]`) and
`pseudo_log_likelihood` (Salazar et al. 2020), as methods `MLM` inherits (`ScoresText`)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.data.pipeline import padded_batches
from mmjax.methods.protocol import Params


class ScoresText:
    """`fill_mask` and `pseudo_log_likelihood` for a method with `model` (a `BertMLM`), `model_config`,
    `special` (`SpecialIds`) and `vocab_size`."""

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
