"""SimMIM (Xie et al. 2022): mask coarse patches, encode everything with mask tokens, regress raw pixels with L1.

Assembled from named parts (DESIGN.md principle 3), each chosen in the config:

  mask.kind    `cells` (the paper's coarse mask; its cell side is `simmim.mask_patch`); or any
               kind that fits a patch grid (`random`, `blockwise`, ...). The encoder is dense,
               so variable counts need no adapter.
  target.kind  `pixels` (the paper); `norm_pixels`, `hog` (MaskFeat), `fourier`. The linear
               head's width follows the target.
  loss.kind    `l1` (the paper); `mse`, `smooth_l1`, `cosine`.

`simmim.domain=frequency` is MFM (Xie et al. 2023, "Masked Frequency Modeling"): instead of
hiding patches, each image is low- or high-pass filtered (`mmjax.masking.frequency_mask`,
radius `simmim.frequency_radius`), the same encoder and linear head predict the original
pixels, and the loss is `mmjax.losses.frequency_loss` on the removed frequencies (`mask.*`
is not read; the target must be `pixels`). Deliberate difference: the reference filters
[0, 1] pixels, clamps to [0, 1] and then normalizes; here the normalized image is filtered
and not clamped (the same filter, up to a constant offset on high-pass images).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from mmjax.config import ConfigError, dataclass_from_config, knob, section_config
from mmjax.losses import LOSSES, frequency_loss, loss_section, masked_loss
from mmjax.masking.mask import Mask
from mmjax.masking.registry import MASKS, CellsArgs, Layout, draw_mask, mask_section
from mmjax.masking.signals import FrequencyMask, apply_frequency_mask, frequency_mask
from mmjax.methods.common import image_parts, image_scores, pool_tokens, reconstruction_images, target_width
from mmjax.methods.protocol import Batch, Params
from mmjax.methods.registry import register_method
from mmjax.models.config import ViTConfig, vit_config_from_section, vit_section
from mmjax.models.simmim import SimMIMModel
from mmjax.ops.patches import unpatchify
from mmjax.parts import Chosen
from mmjax.targets import TARGETS, make_target, target_section

LAYOUT = "grid"
PAPER_MASK = "cells"  # its argument (the cell side) is `simmim.mask_patch`
PAPER_TARGET = "pixels"
PAPER_LOSS = "l1"
DOMAINS = ("patches", "frequency")


@dataclasses.dataclass(frozen=True)
class SimMIMOptions:
    """`simmim`: SimMIM's own knobs, with the paper's defaults."""

    mask_ratio: float = knob(0.6, "fraction of mask cells hidden", low=0, high=1, low_open=True, high_open=True)
    # In tokens: 2 tokens of 16 px = the paper's 32 px mask patches (the `cells` kind's declared default).
    mask_patch: int = knob(CellsArgs().mask_patch, "side of the `cells` mask (SimMIM's mask patch) in tokens")
    head_depth: int = knob(0, "transformer blocks before the linear head (0 = the paper)")
    domain: str = knob(
        "patches",
        "what is hidden: patches (SimMIM: mask tokens) or frequency (MFM: a low- or high-pass filtered image)",
        choices=DOMAINS,
    )
    frequency_radius: float = knob(
        16.0, "MFM: filter radius around the zero frequency, in frequency-grid units (16 at 224 px)", low=0
    )
    low_pass_prob: float = knob(0.5, "MFM: chance an image is low-pass filtered (else high-pass)", low=0, high=1)

    def __post_init__(self):
        if self.mask_patch < 1:
            raise ConfigError(f"simmim.mask_patch must be a positive number of tokens, got {self.mask_patch}")
        if self.head_depth < 0:
            raise ConfigError(f"simmim.head_depth must be >= 0 transformer blocks, got {self.head_depth}")


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config: SimMIM ViT-B/16, 32 px mask patches, ratio 0.6."""
    return ml_collections.ConfigDict(
        {
            "method": "simmim",
            "model": vit_section(),
            "simmim": section_config(SimMIMOptions),
            "mask": mask_section(LAYOUT, PAPER_MASK, owned=("cells",)),
            "target": target_section(PAPER_TARGET),
            "loss": loss_section(PAPER_LOSS),
        }
    )


@dataclasses.dataclass(frozen=True)
class SimMIM:
    """The SimMIM method over a params pytree; batches are dicts with `image` `[B, H, W, C]`.

    `mask_part`, `target_part`, `loss_part` are the chosen parts (None: the paper's).
    """

    model_config: ViTConfig
    options: SimMIMOptions = SimMIMOptions()
    mask_part: Chosen | None = None
    target_part: Chosen | None = None
    loss_part: Chosen | None = None

    def __post_init__(self):
        if self.mask_part is None:
            object.__setattr__(self, "mask_part", MASKS.choose(PAPER_MASK, mask_patch=self.options.mask_patch))
        if self.target_part is None:
            object.__setattr__(self, "target_part", TARGETS.choose(PAPER_TARGET))
        if self.loss_part is None:
            object.__setattr__(self, "loss_part", LOSSES.choose(PAPER_LOSS))
        self.out_dim  # noqa: B018 - checks that the target fits the patches
        if self.frequency:
            if self.target_part.name != "pixels":
                raise ConfigError(
                    f"target.kind={self.target_part.name!r} with simmim.domain='frequency': MFM compares the "
                    f"spectra of predicted and true pixels; expected target.kind='pixels'"
                )
            if self.loss_part.name != "l1":
                raise ConfigError(
                    f"loss.kind={self.loss_part.name!r} with simmim.domain='frequency': MFM's loss is the modulus "
                    f"of the spectrum difference (mmjax.losses.frequency_loss); expected loss.kind='l1'"
                )

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> SimMIM:
        options = dataclass_from_config(SimMIMOptions, config.simmim, "simmim")
        owned = {"cells": CellsArgs(mask_patch=options.mask_patch)}
        mask, target, loss = image_parts(config, LAYOUT, (PAPER_MASK, PAPER_TARGET, PAPER_LOSS), owned)
        return cls(vit_config_from_section(config.model), options, mask_part=mask, target_part=target, loss_part=loss)

    @property
    def mask_ratio(self) -> float:
        return self.options.mask_ratio

    @property
    def mask_patch(self) -> int:
        return self.options.mask_patch

    @property
    def head_depth(self) -> int:
        return self.options.head_depth

    @property
    def frequency(self) -> bool:
        """MFM: the input is frequency-filtered, nothing is hidden as tokens."""
        return self.options.domain == "frequency"

    @property
    def out_dim(self) -> int:
        """The target's width per token (the head's output width)."""
        return target_width(self.target_part, self.model_config)

    @property
    def model(self) -> SimMIMModel:
        return SimMIMModel(self.model_config, self.head_depth, self.out_dim)

    def _images(self, batch: Batch) -> jax.Array:
        if "image" not in batch:
            raise KeyError(f"SimMIM batches need an 'image' entry [B, H, W, C]; got keys {sorted(batch)}")
        return batch["image"]

    def make_mask(self, rng: jax.Array, batch_size: int, images: jax.Array | None = None) -> Mask:
        """The `mask.kind` mask; by default SimMIM's: `ceil(cells * ratio)` cells of `mask_patch`^2 tokens.

        A grid that `mask_patch` does not divide gets cells cut by its bottom and right
        edges (e.g. a 7 x 7 grid of 4 px tokens at 28 px, 2 x 2-token cells). Guided kinds
        (`prior_guided`) read score maps of `images` `[B, H, W, C]`.
        """
        scores = image_scores(self.mask_part, images, self.model_config.patch_size)
        layout = Layout(LAYOUT, self.model_config.grid, scores=scores)
        return draw_mask(self.mask_part, rng, batch_size, layout, self.mask_ratio)

    def make_frequency_mask(self, rng: jax.Array, batch_size: int) -> FrequencyMask:
        """MFM's filter per image: `removed` `[B, H, W]` over the centered spectrum, `low_pass` `[B]`."""
        o = self.options
        return frequency_mask(
            rng, batch_size, self.model_config.image_size, radius=o.frequency_radius, low_pass_prob=o.low_pass_prob
        )

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        images = self._images(batch)
        hidden = None if self.frequency else self.make_mask(jax.random.key(0), images.shape[0], images).mask
        return nn.meta.unbox(self.model.init(rng, images, hidden)["params"])

    def param_axes(self) -> Params:
        cfg = self.model_config
        images = jax.ShapeDtypeStruct((1, *cfg.image_size, cfg.channels), jnp.float32)
        hidden = None if self.frequency else jax.ShapeDtypeStruct((1, cfg.num_patches), jnp.bool_)
        shapes = jax.eval_shape(self.model.init, jax.random.key(0), images, hidden)
        return nn.get_partition_spec(shapes)["params"]

    def predict(self, params: Params, batch: Batch, rng: jax.Array) -> tuple[jax.Array, Mask | FrequencyMask]:
        """Target predictions `[B, N, D]` for every patch (pixels: `p*p*C`), and the mask used.

        With `simmim.domain=frequency` the encoder sees the filtered images and the mask is
        the `FrequencyMask`.
        """
        images = self._images(batch)
        if self.frequency:
            filtered = self.make_frequency_mask(rng, images.shape[0])
            return self.model.apply({"params": params}, apply_frequency_mask(images, filtered), None), filtered
        mask = self.make_mask(rng, images.shape[0], images)
        return self.model.apply({"params": params}, images, mask.mask), mask

    def loss(
        self, params: Params, batch: Batch, rng: jax.Array, train: bool = True
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """`loss.kind` (L1) between predicted and true targets (pixels) of hidden patches.

        MFM (`simmim.domain=frequency`): `frequency_loss` between the predicted and true
        images on the removed frequencies.
        """
        del train
        pred, mask = self.predict(params, batch, rng)
        if self.frequency:
            cfg = self.model_config
            loss = frequency_loss(unpatchify(pred, cfg.grid, cfg.patch_size), self._images(batch), mask.removed)
            removed = jnp.mean(mask.removed.astype(jnp.float32))
            return loss, {"loss": loss, "removed_fraction": removed, "low_pass": jnp.mean(mask.low_pass)}
        target = make_target(self.target_part, self._images(batch), self.model_config.patch_size)
        loss = masked_loss(self.loss_part, pred, target, mask.mask)
        return loss, {"loss": loss, "mask_ratio": jnp.mean(mask.mask.astype(jnp.float32))}

    def reconstruct(self, params: Params, batch: Batch, rng: jax.Array) -> dict[str, jax.Array]:
        """`prediction`, `pasted`, `masked` images `[B, H, W, C]` and `mask` `[B, N]` (pixel targets only)."""
        if not self.target_part.part.fact("pixels"):
            raise ValueError(f"reconstruct needs a pixel target; target.kind={self.target_part.name!r}")
        if self.frequency:
            raise ValueError("reconstruct pastes hidden patches; simmim.domain='frequency' hides none")
        pred, mask = self.predict(params, batch, rng)
        norm_pix = bool(self.target_part.part.fact("normalized"))
        return reconstruction_images(pred, self._images(batch), mask.mask, self.model_config, norm_pix=norm_pix)

    def encoder(self, params: Params) -> tuple[ViTConfig, Params]:
        """The `ViTEncoder` that `features` runs, for export (the prediction head is left out)."""
        return self.model_config, params["encoder"]

    def features(self, params: Params, images: jax.Array, pool: str = "cls") -> jax.Array:
        """Unmasked encoder features: `cls` / `mean` `[B, D]` or `tokens` `[B, 1 + N, D]`."""
        return pool_tokens(self.model.apply({"params": params}, images, method=SimMIMModel.encode), pool)


@register_method("simmim", protocols=("linear_probe", "reconstruction_figure"))
def build_simmim(config: ml_collections.ConfigDict) -> SimMIM:
    return SimMIM.from_config(config)


__all__ = ["SimMIM", "SimMIMOptions", "build_simmim", "default_config"]
