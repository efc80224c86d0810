"""MAE (He et al. 2022): mask 75% of patches, encode the rest, reconstruct the hidden pixels."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from mmjax.config import dataclass_from_config
from mmjax.losses import masked_mse
from mmjax.masking.mask import Mask, random_mask, random_mask_from_noise
from mmjax.methods.common import pool_tokens, reconstruction_images
from mmjax.methods.protocol import Batch, Params
from mmjax.methods.registry import register_method
from mmjax.models.config import DecoderConfig, ViTConfig, vit_config_from_section, vit_section
from mmjax.models.mae import MAEModel
from mmjax.ops.patches import patchify


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config, with MAE ViT-B/16 defaults."""
    return ml_collections.ConfigDict(
        {
            "method": "mae",
            "model": vit_section(),
            "decoder": {
                "width": 512,
                "depth": 8,
                "heads": 16,
                "mlp_dim": 2048,
                "posemb": "sincos2d",
            },
            "mae": {"mask_ratio": 0.75, "norm_pix_loss": True},
        }
    )


@dataclasses.dataclass(frozen=True)
class MAEOptions:
    mask_ratio: float = 0.75
    norm_pix_loss: bool = True

    def __post_init__(self):
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mae.mask_ratio must be in [0, 1), got {self.mask_ratio}")


@dataclasses.dataclass(frozen=True)
class MAE:
    """The MAE method: `init`, `loss`, `reconstruct`, `features` over a params pytree.

    Batches are dicts with `image` `[B, H, W, C]` (float, already normalised).
    """

    model_config: ViTConfig
    decoder_config: DecoderConfig
    mask_ratio: float = 0.75
    norm_pix_loss: bool = True

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> MAE:
        options = dataclass_from_config(MAEOptions, config.get("mae", {}), "mae")
        return cls(
            model_config=vit_config_from_section(config.model),
            decoder_config=dataclass_from_config(DecoderConfig, config.decoder, "decoder"),
            mask_ratio=options.mask_ratio,
            norm_pix_loss=options.norm_pix_loss,
        )

    @property
    def model(self) -> MAEModel:
        return MAEModel(self.model_config, self.decoder_config)

    def _images(self, batch: Batch) -> jax.Array:
        if "image" not in batch:
            raise KeyError(f"MAE batches need an 'image' entry [B, H, W, C]; got keys {sorted(batch)}")
        return batch["image"]

    def make_mask(self, rng: jax.Array, batch_size: int, noise: jax.Array | None = None) -> Mask:
        """Random mask over the patch grid; `noise` `[B, N]` reproduces a given masking."""
        if noise is not None:
            return random_mask_from_noise(noise, self.mask_ratio)
        return random_mask(rng, batch_size, self.model_config.num_patches, self.mask_ratio)

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        images = self._images(batch)
        mask = self.make_mask(jax.random.key(0), images.shape[0])
        return nn.meta.unbox(self.model.init(rng, images, mask)["params"])

    def param_axes(self) -> Params:
        cfg = self.model_config
        images = jax.ShapeDtypeStruct((1, *cfg.image_size, cfg.channels), jnp.float32)
        mask = jax.eval_shape(lambda: self.make_mask(jax.random.key(0), 1))
        shapes = jax.eval_shape(self.model.init, jax.random.key(0), images, mask)
        return nn.get_partition_spec(shapes)["params"]

    def predict(
        self, params: Params, batch: Batch, rng: jax.Array, noise: jax.Array | None = None
    ) -> tuple[jax.Array, Mask]:
        """Patch predictions `[B, N, p*p*C]` (in normalised-patch units with norm_pix) and the mask."""
        images = self._images(batch)
        mask = self.make_mask(rng, images.shape[0], noise)
        return self.model.apply({"params": params}, images, mask), mask

    def loss(
        self,
        params: Params,
        batch: Batch,
        rng: jax.Array,
        train: bool = True,
        noise: jax.Array | None = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Masked MSE on hidden patches; `rng` draws the mask, `noise` overrides it."""
        del train  # MAE pretraining uses no dropout.
        pred, mask = self.predict(params, batch, rng, noise)
        target = patchify(self._images(batch), self.model_config.patch_size)
        loss = masked_mse(pred, target, mask.mask, norm_pix=self.norm_pix_loss)
        return loss, {"loss": loss, "mask_ratio": jnp.mean(mask.mask.astype(jnp.float32))}

    def reconstruct(
        self, params: Params, batch: Batch, rng: jax.Array, noise: jax.Array | None = None
    ) -> dict[str, jax.Array]:
        """Images rebuilt from a masked view.

        Returns a dict with `prediction` `[B, H, W, C]` (every patch predicted, norm_pix
        undone with each true patch's mean and std), `pasted` (true visible patches,
        predicted hidden ones), `masked` (hidden patches zeroed) and `mask` `[B, N]`.
        """
        pred, mask = self.predict(params, batch, rng, noise)
        return reconstruction_images(
            pred, self._images(batch), mask.mask, self.model_config, norm_pix=self.norm_pix_loss
        )

    def features(self, params: Params, images: jax.Array, pool: str = "cls") -> jax.Array:
        """Encoder features of whole (unmasked) images.

        Args:
          images: `[B, H, W, C]`.
          pool: `cls` -> `[B, D]` cls token; `mean` -> `[B, D]` mean of patch tokens;
            `tokens` -> `[B, 1 + N, D]` everything.
        """
        tokens = self.model.apply({"params": params}, images, method=MAEModel.encode)
        return pool_tokens(tokens, pool)


@register_method("mae")
def build_mae(config: ml_collections.ConfigDict) -> MAE:
    return MAE.from_config(config)


__all__ = ["MAE", "build_mae", "default_config"]
