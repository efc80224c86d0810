"""MLM vs CLM on the same encoder (Gisserot-Boukhlef et al. 2025, "Should We Still Pretrain Encoders with
Masked Language Modeling?").

An add-on term of BERT's MLM (`CausalObjective`), on with `mlm.objective` other than `mlm`; it
replaces the objective. `clm` trains the encoder with causal attention to predict each next
token of its segment; `clm_then_mlm` is the paper's biphasic schedule, CLM for the first
`mlm.clm_share` of `train.steps`, then MLM (the switch reads `params["steps_seen"]`, counted by
`after_step`, not trained). The held-out evaluation is masked-token prediction with
bidirectional attention in every case.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from mmjax.config import ConfigError
from mmjax.losses import masked_cross_entropy
from mmjax.methods.protocol import Batch, Params
from mmjax.methods.terms import Term, register_term
from mmjax.models.bert import BertMLM

STEPS_SEEN = "steps_seen"  # params entry of `clm_then_mlm`: optimizer steps taken (float32 [])


def causal_loss(base: Any, params: Params, batch: Batch, rng: jax.Array, train: bool = True):
    """CLM: mean cross entropy of each next token of the same segment, under causal attention.

    Metrics: next-token accuracy (`accuracy`) and `mask_rate` 0 (nothing is masked).
    """
    ids, segments = batch["input_ids"], batch["segment_ids"]
    deterministic = not train or base.model_config.dropout == 0.0
    rngs = {} if deterministic else {"dropout": rng}
    hidden = base.model.apply(
        {"params": params},
        ids,
        segments,
        batch.get("positions"),
        deterministic=deterministic,
        rngs=rngs,
        causal=True,
        method=BertMLM.encode,
    )
    logits = base.model.apply({"params": params}, hidden[:, :-1], method=BertMLM.logits)
    weights = (segments[:, 1:] == segments[:, :-1]) & (segments[:, 1:] > 0)
    loss, accuracy = masked_cross_entropy(logits, ids[:, 1:], weights)
    return loss, {"accuracy": accuracy, "mask_rate": jnp.zeros((), jnp.float32)}


@register_term("mlm")
@dataclasses.dataclass(frozen=True)
class CausalObjective(Term):
    """CLM as a term: the objective it replaces MLM's with, and `clm_then_mlm`'s step count."""

    section = "clm"

    kind: str
    switch_step: float  # `clm_then_mlm`: MLM from this many steps on

    @classmethod
    def build(cls, options: None, base: Any) -> CausalObjective | None:
        kind = base.options.objective
        if kind == "mlm":
            return None
        if base.model_config.decoder_depth:
            raise ConfigError(f"mlm.objective={kind!r} with MAE-LM's decoder: expected model.decoder_depth=0")
        return cls(kind, base.options.clm_share * base.total_steps)

    @property
    def switches(self) -> bool:
        return self.kind == "clm_then_mlm"

    def wrap(self, params: Params) -> Params:
        return {**params, STEPS_SEEN: jnp.zeros((), jnp.float32)} if self.switches else params

    def wrap_axes(self, axes: Params) -> Params:
        return {**axes, STEPS_SEEN: jax.sharding.PartitionSpec()} if self.switches else axes

    def trainable(self, flags: Params) -> Params:
        return {**flags, STEPS_SEEN: False} if self.switches else flags

    def after_step(self, params: Params, state_inputs: Any = None) -> Params:
        return {**params, STEPS_SEEN: params[STEPS_SEEN] + 1} if self.switches else params

    def objective(self, base: Any, params: Params, batch: Batch, rng: jax.Array, train: bool):
        """`clm`: `causal_loss`; `clm_then_mlm`: it while `steps_seen` < the switch, then MLM (metric
        `clm_phase` 1 while CLM)."""
        if not self.switches:
            return causal_loss(base, params, batch, rng, train)
        in_clm = params[STEPS_SEEN] < self.switch_step
        loss, metrics = jax.lax.cond(
            in_clm,
            lambda: causal_loss(base, params, batch, rng, train),
            lambda: base.masked_loss(params, batch, rng, train),
        )
        return loss, {**metrics, "clm_phase": in_clm.astype(jnp.float32)}


__all__ = ["STEPS_SEEN", "CausalObjective", "causal_loss"]
