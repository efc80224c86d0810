"""MAE (He et al. 2022): mask 75% of patches, encode the rest, reconstruct the hidden pixels.

Assembled from named parts (DESIGN.md principle 3), each chosen in the config:

  mask.kind    `random` (the paper); any kind that fits a patch grid (`mmjax.masking.registry`),
               e.g. `blockwise` (BEiT's). Kinds whose hidden count varies are topped up /
               trimmed to MAE's fixed `int(N * (1 - mae.mask_ratio))` visible patches.
  target.kind  None = the paper's: `norm_pixels` when `mae.norm_pix_loss` (HF ViTMAE's knob),
               else `pixels`; or `hog`, `fourier` (`mmjax.targets`). The decoder's output
               width follows the target.
  loss.kind    `mse` (the paper); `l1`, `smooth_l1`, `cosine` (`mmjax.losses.LOSSES`).

`mae.num_views` > 1 is DMJD's disjoint masking (Ma et al. 2023): each image is seen as
that many views whose visible sets never overlap (`mmjax.masking.disjoint_view_masks`), all
encoded in the same step as one batch of `V * B`, and the loss is the mean over the views.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from mmjax.config import ConfigError, dataclass_from_config, knob, section_config
from mmjax.losses import LOSSES, loss_section, masked_loss
from mmjax.masking.mask import Mask, num_visible_tokens, random_mask_from_noise
from mmjax.masking.multimodal import disjoint_view_masks
from mmjax.masking.registry import MASKS, Layout, draw_mask, mask_section
from mmjax.methods.common import image_parts, image_scores, pool_tokens, reconstruction_images
from mmjax.methods.protocol import Batch, Params
from mmjax.methods.registry import register_method
from mmjax.models.config import DecoderConfig, ViTConfig, vit_config_from_section, vit_section
from mmjax.models.mae import MAEModel
from mmjax.parts import Chosen
from mmjax.targets import TARGETS, make_target, target_dim, target_section

# The paper's parts; `target` follows `mae.norm_pix_loss` (see `MAE.paper_target`).
LAYOUT = "grid"
PAPER_MASK = "random"
PAPER_LOSS = "mse"


@dataclasses.dataclass(frozen=True)
class MAEOptions:
    """`mae`: MAE's own knobs, with the paper's defaults."""

    mask_ratio: float = knob(
        0.75, "fraction of patches hidden; fixes the encoder's visible count", low=0, high=1, high_open=True
    )
    norm_pix_loss: bool = knob(
        True, "the paper's target (when target.kind is unset): per-patch normalized pixels (HF's norm_pix_loss)"
    )
    num_views: int = knob(1, "disjoint masked views per image in one step (DMJD; 1 = MAE)", low=1)


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config, with MAE ViT-B/16 defaults; generated from the declarations."""
    return ml_collections.ConfigDict(
        {
            "method": "mae",
            "model": vit_section(),
            "decoder": section_config(DecoderConfig),
            "mae": section_config(MAEOptions),
            "mask": mask_section(LAYOUT, PAPER_MASK),
            "target": target_section(None),
            "loss": loss_section(PAPER_LOSS),
        }
    )


def paper_target(options: MAEOptions) -> Chosen:
    """MAE's own target: normalized pixels with `norm_pix_loss`, else raw pixels."""
    return TARGETS.choose("norm_pixels" if options.norm_pix_loss else "pixels")


def check_target_fits(target: Chosen, model_config: ViTConfig) -> int:
    """The target's width per patch; a target that cannot cut these patches is a `ConfigError`."""
    try:
        return target_dim(target, model_config.patch_size, model_config.channels)
    except ValueError as err:
        raise ConfigError(f"target.{target.name} with model.patch_size={model_config.patch_size}: {err}") from None


@dataclasses.dataclass(frozen=True)
class MAE:
    """The MAE method: `init`, `loss`, `reconstruct`, `features` over a params pytree.

    Batches are dicts with `image` `[B, H, W, C]` (float, already normalised). `mask_part`,
    `target_part`, `loss_part` are the chosen parts (None: the paper's).
    """

    model_config: ViTConfig
    decoder_config: DecoderConfig
    options: MAEOptions = MAEOptions()
    mask_part: Chosen | None = None
    target_part: Chosen | None = None
    loss_part: Chosen | None = None

    def __post_init__(self):
        if self.mask_part is None:
            object.__setattr__(self, "mask_part", MASKS.choose(PAPER_MASK))
        if self.target_part is None:
            object.__setattr__(self, "target_part", paper_target(self.options))
        if self.loss_part is None:
            object.__setattr__(self, "loss_part", LOSSES.choose(PAPER_LOSS))
        check_target_fits(self.target_part, self.model_config)
        views = self.options.num_views
        if views > 1:
            if self.mask_part.name != "random":
                raise ConfigError(
                    f"mae.num_views={views} draws disjoint random views; expected mask.kind='random', "
                    f"got {self.mask_part.name!r}"
                )
            num_tokens = self.model_config.num_patches
            visible = num_visible_tokens(num_tokens, self.mask_ratio)
            if views * visible > num_tokens:
                raise ConfigError(
                    f"mae.num_views={views}: {views} disjoint views of {visible} visible patches need "
                    f"{views * visible} of the {num_tokens}; expected num_views <= {num_tokens // max(visible, 1)}"
                )

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> MAE:
        options = dataclass_from_config(MAEOptions, config.mae, "mae")
        mask, target, loss = image_parts(config, LAYOUT, (PAPER_MASK, paper_target(options).name, PAPER_LOSS))
        return cls(
            model_config=vit_config_from_section(config.model),
            decoder_config=dataclass_from_config(DecoderConfig, config.decoder, "decoder"),
            options=options,
            mask_part=mask,
            target_part=target,
            loss_part=loss,
        )

    @property
    def mask_ratio(self) -> float:
        return self.options.mask_ratio

    @property
    def norm_pix_loss(self) -> bool:
        """Whether the target is MAE's per-patch normalized pixels (HF ViTMAE's `norm_pix_loss`)."""
        return self.target_part.name == "norm_pixels"

    @property
    def layout(self) -> Layout:
        return Layout(LAYOUT, self.model_config.grid)

    @property
    def model(self) -> MAEModel:
        return MAEModel(self.model_config, self.decoder_config, check_target_fits(self.target_part, self.model_config))

    def _images(self, batch: Batch) -> jax.Array:
        """The batch's images `[B, H, W, C]`, repeated view-major to `[V * B, ...]` with `mae.num_views` = V."""
        if "image" not in batch:
            raise KeyError(f"MAE batches need an 'image' entry [B, H, W, C]; got keys {sorted(batch)}")
        images = batch["image"]
        views = self.options.num_views
        return images if views == 1 else jnp.concatenate([images] * views, axis=0)

    def make_mask(
        self, rng: jax.Array, batch_size: int, noise: jax.Array | None = None, images: jax.Array | None = None
    ) -> Mask:
        """The `mask.kind` mask over the patch grid, with a fixed visible count.

        `noise` `[B, N]` reproduces a random mask (`random_mask_from_noise`). Guided kinds
        (`prior_guided`) read score maps of `images` `[B, H, W, C]`. With `mae.num_views` = V
        > 1, the V disjoint views of each example, view-major: `[V * B, N]`.
        """
        views = self.options.num_views
        if views > 1 and noise is None:
            visible = num_visible_tokens(self.model_config.num_patches, self.mask_ratio)
            masks = disjoint_view_masks(rng, batch_size, self.model_config.num_patches, views, visible)
            return jax.tree.map(lambda x: x.reshape(views * batch_size, *x.shape[2:]), masks)
        if noise is not None:
            if views > 1:
                raise ValueError(f"noise reproduces one random mask; this MAE draws mae.num_views={views} views")
            if self.mask_part.name != "random":
                raise ValueError(f"noise reproduces a random mask; this MAE has mask.kind={self.mask_part.name!r}")
            return random_mask_from_noise(noise, self.mask_ratio)
        scores = image_scores(self.mask_part, images, self.model_config.patch_size)
        layout = dataclasses.replace(self.layout, scores=scores)
        return draw_mask(self.mask_part, rng, batch_size, layout, self.mask_ratio, fixed_count=True)

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        images = self._images(batch)
        mask = self.make_mask(jax.random.key(0), images.shape[0] // self.options.num_views, images=images)
        return nn.meta.unbox(self.model.init(rng, images, mask)["params"])

    def param_axes(self) -> Params:
        cfg = self.model_config
        images = jax.ShapeDtypeStruct((self.options.num_views, *cfg.image_size, cfg.channels), jnp.float32)
        mask = jax.eval_shape(lambda x: self.make_mask(jax.random.key(0), 1, images=x), images)
        shapes = jax.eval_shape(self.model.init, jax.random.key(0), images, mask)
        return nn.get_partition_spec(shapes)["params"]

    def predict(
        self, params: Params, batch: Batch, rng: jax.Array, noise: jax.Array | None = None
    ) -> tuple[jax.Array, Mask]:
        """Patch predictions `[B, N, D]` of the target (normalised-patch units with norm_pix) and the mask.

        With `mae.num_views` = V > 1 both cover the V views, view-major: `[V * B, ...]`.
        """
        images = self._images(batch)
        mask = self.make_mask(rng, images.shape[0] // self.options.num_views, noise, images)
        return self.model.apply({"params": params}, images, mask), mask

    def loss(
        self,
        params: Params,
        batch: Batch,
        rng: jax.Array,
        train: bool = True,
        noise: jax.Array | None = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """`loss.kind` (MSE) between prediction and target on hidden patches.

        `rng` draws the mask, `noise` overrides it.
        """
        del train  # MAE pretraining uses no dropout.
        pred, mask = self.predict(params, batch, rng, noise)
        target = make_target(self.target_part, self._images(batch), self.model_config.patch_size)
        loss = masked_loss(self.loss_part, pred, target, mask.mask)
        return loss, {"loss": loss, "mask_ratio": jnp.mean(mask.mask.astype(jnp.float32))}

    def reconstruct(
        self, params: Params, batch: Batch, rng: jax.Array, noise: jax.Array | None = None
    ) -> dict[str, jax.Array]:
        """Images rebuilt from a masked view (pixel targets only).

        Returns a dict with `prediction` `[B, H, W, C]` (every patch predicted, norm_pix
        undone with each true patch's mean and std), `pasted` (true visible patches,
        predicted hidden ones), `masked` (hidden patches zeroed) and `mask` `[B, N]`.
        """
        if not self.target_part.part.fact("pixels"):
            raise ValueError(f"reconstruct needs a pixel target; target.kind={self.target_part.name!r}")
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


__all__ = ["MAE", "MAEOptions", "build_mae", "default_config"]
