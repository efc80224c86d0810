"""4M's target budget on one modality (Mizrahi et al. 2023), with SelectiveMAE's cheaper decoder pass.

An add-on term of MAE (`TargetBudget`, section `budget`), on with `budget.target_ratio` < 1:
in training, 4M's input and target budgets (`mmjax.masking.multimodal_budget_masks`) draw MAE's
visible count and, among the hidden patches, `round(target_ratio * hidden)` (at least 1)
targets; the decoder's blocks see the visible and target tokens only and the loss counts the
targets. `predict` and `reconstruct` still decode every patch. It draws random masks only.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from mmjax.config import ConfigError, knob, moved_field
from mmjax.masking.dense import with_indices
from mmjax.masking.mask import Mask, num_visible_tokens
from mmjax.masking.multimodal import multimodal_budget_masks
from mmjax.methods.terms import Drawn, Step, Term, register_term

moved_field("mae.target_ratio", "budget.target_ratio")  # an option of MAE before it became an add-on term


@dataclasses.dataclass(frozen=True)
class BudgetOptions:
    """`budget`: the share of hidden patches that are targets; 1 is MAE."""

    target_ratio: float = knob(
        1.0,
        "share of the hidden patches decoded and counted by the loss (4M's target budget)",
        low=0,
        high=1,
        low_open=True,
    )


@register_term("mae")
@dataclasses.dataclass(frozen=True)
class TargetBudget(Term):
    """The target budget as a term: it draws a training step's masks and logs the target share."""

    section = "budget"
    options = BudgetOptions

    target_ratio: float
    num_tokens: int
    num_visible: int

    @classmethod
    def build(cls, options: BudgetOptions, base: Any) -> TargetBudget | None:
        if options.target_ratio == 1:
            return None
        if base.mask_part.name != "random":
            raise ConfigError(
                f"budget.target_ratio={options.target_ratio} draws 4M's random input and target budgets; "
                f"expected mask.kind='random', got {base.mask_part.name!r}"
            )
        num_tokens = base.model_config.num_patches
        return cls(options.target_ratio, num_tokens, num_visible_tokens(num_tokens, base.mask_ratio))

    def draw_budget(self, rng: jax.Array, batch_size: int) -> tuple[Mask, jax.Array]:
        """4M's budgets on one modality: `(mask, target_ids [B, T])`, both uniform."""
        targets = max(1, round(self.target_ratio * (self.num_tokens - self.num_visible)))
        budget = multimodal_budget_masks(rng, batch_size, (self.num_tokens,), self.num_visible, targets)
        return with_indices(~budget.input_mask, self.num_visible), budget.target_ids

    def draw(self, base, rng: jax.Array, images: jax.Array, train: bool, noise: jax.Array | None) -> Drawn | None:
        del base
        if not train or noise is not None:
            return None
        mask, target_ids = self.draw_budget(rng, images.shape[0])
        rows = jnp.arange(images.shape[0])[:, None]
        counted = jnp.zeros_like(mask.mask).at[rows, target_ids].set(True)
        return Drawn(mask, counted, jnp.concatenate([mask.ids_keep, target_ids], 1))

    def loss(self, step: Step) -> tuple[None, dict[str, jax.Array]]:
        return None, {"target_fraction": jnp.mean(step.counted.astype(jnp.float32))}


__all__ = ["BudgetOptions", "TargetBudget"]
