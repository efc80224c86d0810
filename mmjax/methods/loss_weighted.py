"""WSBERT's loss-based weighted sampling (Zhang et al. 2023, "Weighted Sampling for Masked Language Modeling").

An add-on term of BERT's MLM (`LossWeightedSelection`, section `wsbert`), on with
`mlm.selection=loss_weighted`: the method keeps `params["token_loss"]` `[V]`, a running mean
(`wsbert.loss_momentum`) of each token id's training cross-entropy, updated by `after_step` from
the step's chosen positions, and the selection picks positions with probability proportional to
`token_loss[id] ** mlm.weight_alpha`: tokens the model still gets wrong are masked more often.
The table starts at ones (uniform BERT selection) and is not trained; a corruption drawn
without it (the held-out evaluation) is uniform.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from mmjax.config import ConfigError, knob, moved_field
from mmjax.methods.protocol import STATE_INPUTS, Batch, Params
from mmjax.methods.terms import Step, Term, register_term

moved_field("mlm.loss_momentum", "wsbert.loss_momentum")  # an option of MLM before it became an add-on term

LOSS_TABLE = "token_loss"  # params entry: running cross-entropy per token id [V] (not trained)


@dataclasses.dataclass(frozen=True)
class LossWeightOptions:
    """`wsbert`: the running loss table of `mlm.selection=loss_weighted`."""

    loss_momentum: float = knob(
        0.99, "momentum of each token id's running training cross-entropy", low=0, high=1, high_open=True
    )


@register_term("mlm")
@dataclasses.dataclass(frozen=True)
class LossWeightedSelection(Term):
    """WSBERT as a term: the loss table in the params, its update after each step, its weights for the selection."""

    section = "wsbert"
    options = LossWeightOptions

    momentum: float
    alpha: float
    vocab_size: int

    @classmethod
    def build(cls, options: LossWeightOptions, base: Any) -> LossWeightedSelection | None:
        if base.options.selection != "loss_weighted":
            return None
        if base.options.objective != "mlm":
            raise ConfigError(
                f"mlm.selection='loss_weighted' needs mlm.objective='mlm', got {base.options.objective!r}"
            )
        return cls(options.loss_momentum, base.options.weight_alpha, base.vocab_size)

    def wrap(self, params: Params) -> Params:
        return {**params, LOSS_TABLE: jnp.ones((self.vocab_size,), jnp.float32)}

    def wrap_axes(self, axes: Params) -> Params:
        return {**axes, LOSS_TABLE: jax.sharding.PartitionSpec()}

    def trainable(self, flags: Params) -> Params:
        return {**flags, LOSS_TABLE: False}

    def mask_inputs(self, base: Any, params: Params, inputs: Batch) -> dict[str, jax.Array]:
        """`log_weights` `[V]`: `weight_alpha * log(token_loss)`, what the selection adds to each id's log-odds."""
        return {"log_weights": self.alpha * jnp.log(params[LOSS_TABLE])}

    def loss(self, step: Step) -> tuple[None, dict[str, Any]]:
        """No loss; this step's cross-entropy sums and counts per target id `[V]`, for `after_step`."""
        weights = step.counted
        ce = optax.softmax_cross_entropy_with_integer_labels(step.pred, step.target)
        ids, w = step.target.reshape(-1), weights.reshape(-1).astype(jnp.float32)
        per_id = jax.lax.stop_gradient(jnp.where(weights, ce, 0.0)).reshape(-1)
        sums = {
            "sum": jnp.zeros((self.vocab_size,)).at[ids].add(per_id, mode="drop"),
            "count": jnp.zeros((self.vocab_size,)).at[ids].add(w, mode="drop"),
        }
        return None, {STATE_INPUTS: sums}

    def after_step(self, params: Params, state_inputs: Any = None) -> Params:
        """Move each seen token id's running loss towards this step's mean (`{"sum": [V], "count": [V]}`)."""
        if state_inputs is None:
            return params
        m, table = self.momentum, params[LOSS_TABLE]
        mean = state_inputs["sum"] / jnp.maximum(state_inputs["count"], 1.0)
        return {**params, LOSS_TABLE: jnp.where(state_inputs["count"] > 0, m * table + (1 - m) * mean, table)}


__all__ = ["LOSS_TABLE", "LossWeightOptions", "LossWeightedSelection"]
