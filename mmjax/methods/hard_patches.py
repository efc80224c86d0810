"""HPM (Wang et al. 2023, "Hard Patches Mining for Masked Image Modeling"): MAE learns to predict its own
reconstruction loss, and its EMA teacher's predictions pick the patches to hide.

An add-on term of MAE (`HardPatchTerm`, section `hpm`, params `params["hpm"]`), on with
`mask.kind=hard_patch`: a second decoder branch of MAE's decoder size on the decoder's tokens
(`blocks`, `norm`, `pred`: a `p_h * p_w * C`-wide linear layer averaged to one number, as in the
reference) predicts each patch's reconstruction loss and is trained on the hidden patches
against the real per-patch loss (no gradient into it): pairwise order with `hpm.relative`
(`mmjax.losses.pairwise_ranking_loss`), else standardized regression. The EMA teacher
(`mmjax.methods.mask_teacher`) runs the same branch on the whole image (`scores`), and the
mask hides the patches it expects to be hardest, a share growing from
`mask.hard_patch.alpha_start` to `alpha_end` over `train.steps` (the rest random).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.config import knob
from mmjax.losses import normalized_regression_loss, pairwise_ranking_loss, token_loss
from mmjax.masking.registry import needed_scores
from mmjax.masking.schedules import ramp
from mmjax.methods.protocol import Params
from mmjax.methods.terms import Step, Term, register_term
from mmjax.models.config import DecoderConfig, ViTConfig, transformer_config
from mmjax.models.token_mae import decoder_head


@dataclasses.dataclass(frozen=True)
class HardPatchOptions:
    """`hpm`: HPM's loss predictor (on with mask.kind=hard_patch)."""

    relative: bool = knob(True, "train the loss predictor on pairwise order (HPM's --relative), else standardized")
    weight: float = knob(1.0, "weight of the loss-prediction term next to the reconstruction loss", low=0)


class LossPredictor(nn.Module):
    """Decoder tokens `[B, 1 + N, D_dec]` -> predicted reconstruction loss per patch, float32 `[B, N]`."""

    config: ViTConfig
    decoder_config: DecoderConfig

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        cfg, dec = self.config, self.decoder_config
        stack = transformer_config(cfg, dec)
        return jnp.mean(decoder_head(tokens, stack, cfg.patch_dim)[:, 1:], axis=-1)


def loss_prediction(options: HardPatchOptions, predicted: jax.Array, per_patch: jax.Array, weights: jax.Array):
    """HPM's objective for the predicted loss `[B, N]` against each patch's loss `[B, N]` (no gradient) on `weights`."""
    objective = pairwise_ranking_loss if options.relative else normalized_regression_loss
    return objective(predicted, jax.lax.stop_gradient(per_patch), weights)


@register_term("mae")
@dataclasses.dataclass(frozen=True)
class HardPatchTerm(Term):
    """HPM's term: `weight` times the loss predictor's objective on the hidden patches."""

    section = "hpm"
    options = HardPatchOptions

    opts: HardPatchOptions
    model_config: ViTConfig
    decoder_config: DecoderConfig
    mask_part: Any
    loss_part: Any
    total_steps: int

    @classmethod
    def build(cls, options: HardPatchOptions, base: Any) -> HardPatchTerm | None:
        if "predicted_loss" not in needed_scores(base.mask_part):
            return None
        c = base
        return cls(options, c.model_config, c.decoder_config, c.mask_part, c.loss_part, c.total_steps)

    @property
    def module(self) -> LossPredictor:
        return LossPredictor(self.model_config, self.decoder_config)

    def init(self, rng: jax.Array, step: Step) -> Params:
        return self.module.init(rng, step.out["decoder_tokens"])["params"]

    def predicted_loss(self, params: Params, out: dict[str, jax.Array]) -> jax.Array:
        """The predicted loss `[B, N]` from a forward's `out["decoder_tokens"]`; `params` are the method's."""
        return self.module.apply({"params": params[self.section]}, out["decoder_tokens"])

    def scores(self, params: Params, out: dict[str, jax.Array]) -> dict[str, jax.Array]:
        return {"predicted_loss": self.predicted_loss(params, out)}

    def loss(self, step: Step) -> tuple[jax.Array, dict[str, jax.Array]]:
        per_patch = token_loss(self.loss_part, step.pred, step.target)
        learned = loss_prediction(self.opts, self.predicted_loss(step.params, step.out), per_patch, step.mask.mask)
        args = self.mask_part.args
        share = ramp(step.params["steps_seen"], self.total_steps, args.alpha_start, args.alpha_end)
        return self.opts.weight * learned, {"loss_prediction": learned, "hard_share": share}


__all__ = ["HardPatchOptions", "HardPatchTerm", "LossPredictor", "loss_prediction"]
