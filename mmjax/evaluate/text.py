"""Text evaluation: masked-token prediction on the held-out split against a unigram baseline.

The held-out rows are corrupted as in training (the method's selection and 80/10/10 split,
keys from `config.seed`), and both predictors are scored at the chosen positions: accuracy
over all of them, accuracy at the ones that became `[MASK]`, and cross-entropy in nats. The
unigram baseline always predicts the most frequent non-special training token; its
cross-entropy is that of the add-one-smoothed training unigram distribution.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mmjax.data.text import packed_split, token_counts
from mmjax.evaluate.report import announce
from mmjax.masking.text import at_predicted
from mmjax.methods.protocol import EvalResult

PROTOCOL = "masked-token prediction"


def masked_token_totals(method: Any, config: Any, params: Any) -> dict[str, float]:
    """Sums over `config.data`'s test split for an `MLM` method and its `params`.

    Keys: `chosen` (positions scored), `at_mask` (those that became `[MASK]`), and for the
    model and the unigram baseline (`unigram_` prefix) `correct`, `correct_at_mask` and
    `loss` (summed cross-entropy, nats); `unigram_id` is the baseline's token id.
    """
    rows = packed_split(config.data, "test")
    counts = token_counts(config.data, method.vocab_size).astype(np.float64)
    counts[list(method.special.as_tuple())] = 0
    top = int(np.argmax(counts))
    log_unigram = jnp.asarray(np.log((counts + 1) / np.sum(counts + 1)), jnp.float32)

    @jax.jit
    def score(params, batch, rng):
        corruption = method.corrupt(rng, batch["input_ids"], batch["segment_ids"])
        logits, targets, weights = method.predict(params, batch, corruption)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
        at_mask = corruption.mask & (corruption.action == 1)
        (at_mask,) = at_predicted(corruption.mask, method.options.max_predictions, at_mask)
        right = jnp.argmax(logits, axis=-1) == targets
        unigram_right = targets == top
        return {
            "chosen": jnp.sum(weights),
            "at_mask": jnp.sum(at_mask),
            "correct": jnp.sum(right & weights),
            "correct_at_mask": jnp.sum(right & at_mask),
            "loss": jnp.sum(jnp.where(weights, ce, 0.0)),
            "unigram_correct": jnp.sum(unigram_right & weights),
            "unigram_correct_at_mask": jnp.sum(unigram_right & at_mask),
            "unigram_loss": -jnp.sum(jnp.where(weights, log_unigram[targets], 0.0)),
        }

    count = len(rows["input_ids"])
    size = min(config.eval.batch_size, count)
    rng = jax.random.key(config.seed)
    totals: dict[str, float] = {"unigram_id": float(top)}
    for start in range(0, count, size):
        # The last batch is padded with empty rows (segment 0: nothing to choose), so one compile serves all.
        batch = {name: jnp.asarray(_pad_rows(a[start : start + size], size)) for name, a in rows.items()}
        part = jax.device_get(score(params, batch, jax.random.fold_in(rng, start)))
        for k, v in part.items():
            totals[k] = totals.get(k, 0.0) + float(v)
    return totals


def _pad_rows(a: np.ndarray, rows: int) -> np.ndarray:
    return np.pad(a, [(0, rows - len(a))] + [(0, 0)] * (a.ndim - 1))


def heldout_accuracy(method: Any, config: Any, params: Any) -> list[EvalResult]:
    """Rows of `masked-token prediction` on the test split: the trained model (`<config.method> model`)
    and the `unigram` baseline, each with `accuracy`, `accuracy at [MASK]` and `cross-entropy` (nats)."""
    totals = masked_token_totals(method, config, params)
    n, n_mask = max(totals["chosen"], 1.0), max(totals["at_mask"], 1.0)
    results = []
    for name, prefix, baseline in ((f"{config.method} model", "", False), ("unigram", "unigram_", True)):
        for metric, value in (
            ("accuracy", totals[f"{prefix}correct"] / n),
            ("accuracy at [MASK]", totals[f"{prefix}correct_at_mask"] / n_mask),
            ("cross-entropy", totals[f"{prefix}loss"] / n),
        ):
            results.append(EvalResult(PROTOCOL, name, metric, value, baseline=baseline))
    return results


def evaluate_mlm(config: Any, method: Any, params: Any) -> list[EvalResult]:
    """The end-of-run report of an `MLM` run: `heldout_accuracy` on `config.data`'s test split."""
    announce(f"{PROTOCOL}: the test split of {config.data.corpus!r}, corruption seed {config.seed}")
    return heldout_accuracy(method, config, params)


__all__ = ["evaluate_mlm", "heldout_accuracy", "masked_token_totals"]
