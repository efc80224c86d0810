"""SimMIM (Xie et al. 2022): mask coarse patches, encode everything with mask tokens, regress raw pixels with L1."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from mmjax.config import dataclass_from_config
from mmjax.losses import masked_l1
from mmjax.masking.dense import simmim_mask
from mmjax.masking.mask import Mask
from mmjax.methods.common import pool_tokens, reconstruction_images
from mmjax.methods.protocol import Batch, Params
from mmjax.methods.registry import register_method
from mmjax.models.config import ViTConfig, vit_config_from_section, vit_section
from mmjax.models.simmim import SimMIMModel
from mmjax.ops.patches import patchify


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config: SimMIM ViT-B/16, 32 px mask patches, ratio 0.6."""
    return ml_collections.ConfigDict(
        {
            "method": "simmim",
            "model": vit_section(),
            # mask_patch is in tokens: 2 tokens of 16 px = the paper's 32 px mask patches.
            # head_depth: transformer blocks before the linear pixel head (0 = the paper).
            "simmim": {"mask_ratio": 0.6, "mask_patch": 2, "head_depth": 0},
        }
    )


@dataclasses.dataclass(frozen=True)
class SimMIMOptions:
    mask_ratio: float = 0.6
    mask_patch: int = 2
    head_depth: int = 0

    def __post_init__(self):
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"simmim.mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.mask_patch < 1:
            raise ValueError(f"simmim.mask_patch must be a positive number of tokens, got {self.mask_patch}")
        if self.head_depth < 0:
            raise ValueError(f"simmim.head_depth must be >= 0 transformer blocks, got {self.head_depth}")


@dataclasses.dataclass(frozen=True)
class SimMIM:
    """The SimMIM method over a params pytree; batches are dicts with `image` `[B, H, W, C]`."""

    model_config: ViTConfig
    mask_ratio: float = 0.6
    mask_patch: int = 2
    head_depth: int = 0

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> SimMIM:
        options = dataclass_from_config(SimMIMOptions, config.get("simmim", {}), "simmim")
        model_config = vit_config_from_section(config.model)
        return cls(model_config, options.mask_ratio, options.mask_patch, options.head_depth)

    @property
    def model(self) -> SimMIMModel:
        return SimMIMModel(self.model_config, self.head_depth)

    def _images(self, batch: Batch) -> jax.Array:
        if "image" not in batch:
            raise KeyError(f"SimMIM batches need an 'image' entry [B, H, W, C]; got keys {sorted(batch)}")
        return batch["image"]

    def make_mask(self, rng: jax.Array, batch_size: int) -> Mask:
        """Coarse random mask: `ceil(cells * ratio)` cells of `mask_patch x mask_patch` tokens.

        A grid that `mask_patch` does not divide gets cells cut by its bottom and right
        edges (e.g. a 7 x 7 grid of 4 px tokens at 28 px, 2 x 2-token cells).
        """
        return simmim_mask(rng, batch_size, self.model_config.grid, self.mask_patch, self.mask_ratio)

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        images = self._images(batch)
        hidden = self.make_mask(jax.random.key(0), images.shape[0]).mask
        return nn.meta.unbox(self.model.init(rng, images, hidden)["params"])

    def param_axes(self) -> Params:
        cfg = self.model_config
        images = jax.ShapeDtypeStruct((1, *cfg.image_size, cfg.channels), jnp.float32)
        hidden = jax.ShapeDtypeStruct((1, cfg.num_patches), jnp.bool_)
        shapes = jax.eval_shape(self.model.init, jax.random.key(0), images, hidden)
        return nn.get_partition_spec(shapes)["params"]

    def predict(self, params: Params, batch: Batch, rng: jax.Array) -> tuple[jax.Array, Mask]:
        """Pixel predictions `[B, N, p*p*C]` for every patch, and the mask used."""
        images = self._images(batch)
        mask = self.make_mask(rng, images.shape[0])
        return self.model.apply({"params": params}, images, mask.mask), mask

    def loss(
        self, params: Params, batch: Batch, rng: jax.Array, train: bool = True
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """L1 between predicted and true pixels of hidden patches."""
        del train
        pred, mask = self.predict(params, batch, rng)
        target = patchify(self._images(batch), self.model_config.patch_size)
        loss = masked_l1(pred, target, mask.mask)
        return loss, {"loss": loss, "mask_ratio": jnp.mean(mask.mask.astype(jnp.float32))}

    def reconstruct(self, params: Params, batch: Batch, rng: jax.Array) -> dict[str, jax.Array]:
        """`prediction`, `pasted`, `masked` images `[B, H, W, C]` and `mask` `[B, N]`."""
        pred, mask = self.predict(params, batch, rng)
        return reconstruction_images(pred, self._images(batch), mask.mask, self.model_config)

    def features(self, params: Params, images: jax.Array, pool: str = "cls") -> jax.Array:
        """Unmasked encoder features: `cls` / `mean` `[B, D]` or `tokens` `[B, 1 + N, D]`."""
        return pool_tokens(self.model.apply({"params": params}, images, method=SimMIMModel.encode), pool)


@register_method("simmim")
def build_simmim(config: ml_collections.ConfigDict) -> SimMIM:
    return SimMIM.from_config(config)
