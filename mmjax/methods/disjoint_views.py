"""DMJD's disjoint masking (Ma et al. 2023, "Disjoint Masking with Joint Distillation"): each image seen as
several masked views whose visible sets never overlap, all in one step.

An add-on term of MAE (`DisjointViews`, section `dmjd`), on with `dmjd.num_views` > 1: the batch
is repeated view-major to `[V * B, ...]` (every entry, labels included), the V views of each
example are drawn by `mmjax.masking.disjoint_view_masks`, encoded in one batch of `V * B`, and
the loss is the mean over the views. It draws random masks only (`mask.kind=random`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from mmjax.config import ConfigError, knob, moved_field
from mmjax.masking.mask import Mask, num_visible_tokens
from mmjax.masking.multimodal import disjoint_view_masks
from mmjax.methods.protocol import Batch
from mmjax.methods.terms import Drawn, Term, register_term

moved_field("mae.num_views", "dmjd.num_views")  # an option of MAE before it became an add-on term


@dataclasses.dataclass(frozen=True)
class ViewOptions:
    """`dmjd`: DMJD's disjoint views; `num_views=1` is MAE."""

    num_views: int = knob(1, "disjoint masked views per image in one step (DMJD; 1 = MAE)", low=1)


@register_term("mae")
@dataclasses.dataclass(frozen=True)
class DisjointViews(Term):
    """DMJD's views as a term: it expands the batch and draws the step's masks."""

    section = "dmjd"
    options = ViewOptions

    num_views: int
    num_tokens: int
    num_visible: int

    @classmethod
    def build(cls, options: ViewOptions, base: Any) -> DisjointViews | None:
        views = options.num_views
        if views == 1:
            return None
        if base.mask_part.name != "random":
            raise ConfigError(
                f"dmjd.num_views={views} draws disjoint random views; expected mask.kind='random', "
                f"got {base.mask_part.name!r}"
            )
        num_tokens = base.model_config.num_patches
        visible = num_visible_tokens(num_tokens, base.mask_ratio)
        if views * visible > num_tokens:
            raise ConfigError(
                f"dmjd.num_views={views}: {views} disjoint views of {visible} visible patches need "
                f"{views * visible} of the {num_tokens}; expected num_views <= {num_tokens // max(visible, 1)}"
            )
        return cls(views, num_tokens, visible)

    def expand(self, batch: Batch) -> Batch:
        return {name: jnp.concatenate([value] * self.num_views, axis=0) for name, value in batch.items()}

    def masks(self, rng: jax.Array, batch_size: int) -> Mask:
        """The V disjoint views of each of `batch_size` examples, view-major: a `Mask` of `[V * B, N]`."""
        masks = disjoint_view_masks(rng, batch_size, self.num_tokens, self.num_views, self.num_visible)
        return jax.tree.map(lambda x: x.reshape(self.num_views * batch_size, *x.shape[2:]), masks)

    def draw(self, base, rng: jax.Array, images: jax.Array, train: bool, noise: jax.Array | None) -> Drawn:
        del base, train
        if noise is not None:
            raise ValueError(f"noise reproduces one random mask; this MAE draws dmjd.num_views={self.num_views} views")
        mask = self.masks(rng, images.shape[0] // self.num_views)
        return Drawn(mask, mask.mask)


__all__ = ["DisjointViews", "ViewOptions"]
