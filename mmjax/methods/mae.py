"""MAE (He et al. 2022): mask 75% of patches, encode the rest, reconstruct the hidden pixels.

Assembled from named parts (DESIGN.md principle 3), each chosen in the config:

  mask.kind    `random` (the paper); any kind that fits a patch grid (`mmjax.masking.registry`),
               e.g. `blockwise` (BEiT's). Kinds whose hidden count varies are topped up /
               trimmed to MAE's fixed `int(N * (1 - mae.mask_ratio))` visible patches.
  target.kind  None = the paper's: `norm_pixels` when `mae.norm_pix_loss` (HF ViTMAE's knob), else
               `pixels`; or `hog`, `fourier` (`mmjax.targets`); the decoder's width follows it.
  loss.kind    `mse` (the paper); `l1`, `smooth_l1`, `cosine` (`mmjax.losses.LOSSES`).

Variants are add-on terms (`mmjax.methods.terms`), each in its own file and config section,
on when its section says so: HPM (`hpm`, with `mask.kind=hard_patch`) and AttMask
(`mask.kind=attention_guided`) with their EMA teacher (`teacher`), DMJD's disjoint views
(`dmjd`), 4M's target budget (`budget`), SupMAE's label head (`supervised`), LocalMIM's local
decoders (`localmim`). The loss below is the paper's; `add_terms` adds what the terms add.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

from mmjax.config import ConfigError, dataclass_from_config, knob, section_config
from mmjax.losses import LOSSES, loss_section, masked_loss
from mmjax.masking.mask import Mask, random_mask_from_noise
from mmjax.masking.registry import MASKS, Layout, draw_mask, mask_section
from mmjax.methods import terms as addons
from mmjax.methods.common import (
    IMAGE_SCORES,
    image_parts,
    image_scores,
    pool_tokens,
    reconstruction_images,
    target_width,
)
from mmjax.methods.protocol import Batch, Params
from mmjax.methods.registry import register_method
from mmjax.models.config import DecoderConfig, ViTConfig, vit_config_from_section, vit_section
from mmjax.models.mae import MAEModel
from mmjax.parts import Chosen
from mmjax.targets import TARGETS, make_target, target_section

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
            **addons.terms_sections("mae"),
        }
    )


def paper_target(options: MAEOptions) -> Chosen:
    """MAE's own target: normalized pixels with `norm_pix_loss`, else raw pixels."""
    return TARGETS.choose("norm_pixels" if options.norm_pix_loss else "pixels")


@dataclasses.dataclass(frozen=True)
class MAE(addons.WithTerms):
    """The MAE method: `init`, `loss`, `reconstruct`, `features` over a params pytree.

    Batches are dicts with `image` `[B, H, W, C]` (float, already normalised). `mask_part`,
    `target_part`, `loss_part` are the chosen parts (None: the paper's); `terms` the add-on
    terms the config turns on (`mmjax.methods.terms`).
    """

    model_config: ViTConfig
    decoder_config: DecoderConfig
    options: MAEOptions = MAEOptions()
    mask_part: Chosen | None = None
    target_part: Chosen | None = None
    loss_part: Chosen | None = None
    terms: tuple[addons.Term, ...] = ()
    total_steps: int = 1  # train.steps: the length of mask curricula

    def __post_init__(self):
        if self.mask_part is None:
            object.__setattr__(self, "mask_part", MASKS.choose(PAPER_MASK))
        if self.target_part is None:
            object.__setattr__(self, "target_part", paper_target(self.options))
        if self.loss_part is None:
            object.__setattr__(self, "loss_part", LOSSES.choose(PAPER_LOSS))
        target_width(self.target_part, self.model_config)

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> MAE:
        options = dataclass_from_config(MAEOptions, config.mae, "mae")
        paper = (PAPER_MASK, paper_target(options).name, PAPER_LOSS)
        supplied = (*IMAGE_SCORES, *addons.supplied_scores("mae"))  # the image's own maps, the terms'
        mask, target, loss = image_parts(config, LAYOUT, paper, supplied=supplied)
        steps = int(config.train.steps) if "train" in config else 1
        if steps < 1:
            raise ConfigError(f"train.steps={steps}: mask curricula need a positive number of steps")
        model_config = vit_config_from_section(config.model)
        decoder_config = dataclass_from_config(DecoderConfig, config.decoder, "decoder")
        base = cls(model_config, decoder_config, options, mask, target, loss, (), steps)
        return dataclasses.replace(base, terms=addons.build_terms("mae", config, base))

    @property
    def mask_ratio(self) -> float:
        return self.options.mask_ratio

    @property
    def norm_pix_loss(self) -> bool:
        """Whether the target is MAE's per-patch normalized pixels (HF ViTMAE's `norm_pix_loss`)."""
        return self.target_part.name == "norm_pixels"

    @property
    def model(self) -> MAEModel:
        return MAEModel(self.model_config, self.decoder_config, target_width(self.target_part, self.model_config))

    def make_mask(
        self,
        rng: jax.Array,
        batch_size: int,
        noise: jax.Array | None = None,
        images: jax.Array | None = None,
        scores: dict[str, jax.Array] | None = None,
        step: jax.Array | None = None,
    ) -> Mask:
        """The `mask.kind` mask over the patch grid, with a fixed visible count.

        `noise` `[B, N]` reproduces a random mask (`random_mask_from_noise`). Guided kinds read
        score maps `[B, N]`: `scores` as given (HPM's `predicted_loss`), the others computed
        from `images` `[B, H, W, C]` (`prior_guided`); `step` places curricula.
        """
        if noise is not None:
            if self.mask_part.name != "random":
                raise ValueError(f"noise reproduces a random mask; this MAE has mask.kind={self.mask_part.name!r}")
            return random_mask_from_noise(noise, self.mask_ratio)
        maps = image_scores(self.mask_part, images, self.model_config.patch_size, scores)
        layout = Layout(LAYOUT, self.model_config.grid, scores=maps, step=step, total_steps=self.total_steps)
        return draw_mask(self.mask_part, rng, batch_size, layout, self.mask_ratio, fixed_count=True)

    def draw(
        self, params: Params, images: jax.Array, rng: jax.Array, noise: jax.Array | None = None, train: bool = False
    ) -> addons.Drawn:
        """The step's masks for `images` `[B, H, W, C]`: a term's (DMJD's views, the budget) or the mask part's."""
        drawn = addons.draw(self.terms, self, rng, images, train, noise)
        if drawn is not None:
            return drawn
        given = addons.mask_inputs(self.terms, self, params, images) if noise is None else {}
        mask = self.make_mask(rng, images.shape[0], noise, images, given.get("scores"), given.get("step"))
        return addons.Drawn(mask, mask.mask)

    def init_step(self, rng: jax.Array, batch: Batch) -> tuple[Params, addons.Step]:
        """The model's boxed params and the `Step` of an init forward pass (for the terms' own init)."""
        batch = addons.expand(self.terms, self._checked(batch))
        images = batch["image"]
        # Every mask kind has MAE's fixed visible count, so a random one gives the shapes.
        mask = random_mask_from_noise(jnp.zeros((images.shape[0], self.model_config.num_patches)), self.mask_ratio)
        (pred, out), variables = self.model.init_with_output(rng, images, mask)
        return variables["params"], addons.Step(batch, mask, mask.mask, pred, pred, out, variables["params"])

    def abstract_batch(self) -> Batch:
        cfg = self.model_config
        return {"image": jax.ShapeDtypeStruct((1, *cfg.image_size, cfg.channels), jnp.float32)}

    @staticmethod
    def _checked(batch: Batch) -> Batch:
        if "image" not in batch:
            raise KeyError(f"MAE batches need an 'image' entry [B, H, W, C]; got keys {sorted(batch)}")
        return batch

    def forward(
        self, params: Params, batch: Batch, rng: jax.Array, noise: jax.Array | None = None, train: bool = False
    ) -> addons.Step:
        """Encode the visible patches, decode every patch (`models_mae.py`'s `forward_encoder` / `forward_decoder`).

        Returns the `Step` the loss and the terms read, of the batch as the terms expand it
        (DMJD's views: `[V * B, ...]`, view-major); `rng` draws the mask, `noise` overrides it.
        """
        batch = addons.expand(self.terms, self._checked(batch))
        images = batch["image"]
        drawn = self.draw(params, images, rng, noise, train)
        pred, out = self.model.apply({"params": params}, images, drawn.mask, drawn.decode_ids)
        target = make_target(self.target_part, images, self.model_config.patch_size)
        return addons.Step(batch, drawn.mask, drawn.counted, pred, target, out, params)

    def predict(self, params: Params, batch: Batch, rng: jax.Array, noise: jax.Array | None = None):
        """Patch predictions `[B, N, D]` of the target (normalised-patch units with norm_pix) and the `Mask`."""
        step = self.forward(params, batch, rng, noise)
        return step.pred, step.mask

    def loss(self, params: Params, batch: Batch, rng: jax.Array, train: bool = True, noise: jax.Array | None = None):
        """`loss.kind` (MSE) on the hidden patches (`models_mae.py`'s `forward_loss`), plus the terms'."""
        del train  # MAE pretraining uses no dropout; the loss is always the training one.
        step = self.forward(params, batch, rng, noise, train=True)
        loss = masked_loss(self.loss_part, step.pred, step.target, step.counted)
        metrics = {"loss": loss, "mask_ratio": jnp.mean(step.mask.mask.astype(jnp.float32))}
        return addons.add_terms(self.terms, loss, metrics, step)

    def reconstruct(
        self, params: Params, batch: Batch, rng: jax.Array, noise: jax.Array | None = None
    ) -> dict[str, jax.Array]:
        """Images rebuilt from a masked view (pixel targets only): `prediction` `[B, H, W, C]` (norm_pix undone
        with each true patch's statistics), `pasted`, `masked` and `mask` `[B, N]` (`reconstruction_images`)."""
        if not self.target_part.part.fact("pixels"):
            raise ValueError(f"reconstruct needs a pixel target; target.kind={self.target_part.name!r}")
        step = self.forward(params, batch, rng, noise)
        return reconstruction_images(
            step.pred, step.batch["image"], step.mask.mask, self.model_config, norm_pix=self.norm_pix_loss
        )

    def encoder(self, params: Params) -> tuple[ViTConfig, Params]:
        """The `ViTEncoder` that `features` runs, for export."""
        return self.model_config, params["encoder"]

    def features(self, params: Params, images: jax.Array, pool: str = "cls") -> jax.Array:
        """Encoder features of whole images `[B, H, W, C]`: `pool` `cls` (the cls token) or `mean` (of the
        patch tokens) `[B, D]`, or `tokens` `[B, 1 + N, D]`."""
        tokens = self.model.apply({"params": params}, images, method=MAEModel.encode)
        return pool_tokens(tokens, pool)


@register_method("mae", protocols=("linear_probe", "reconstruction_figure"))
def build_mae(config: ml_collections.ConfigDict) -> MAE:
    return MAE.from_config(config)


__all__ = ["MAE", "MAEOptions", "build_mae", "default_config"]
