"""MAE (He et al. 2022): mask 75% of patches, encode the rest, reconstruct the hidden pixels.

Assembled from named parts (DESIGN.md principle 3), each chosen in the config:

  mask.kind    `random` (the paper); any kind that fits a patch grid (`mmjax.masking.registry`),
               e.g. `blockwise` (BEiT's). Kinds whose hidden count varies are topped up /
               trimmed to MAE's fixed `int(N * (1 - mae.mask_ratio))` visible patches.
  target.kind  None = the paper's: `norm_pixels` when `mae.norm_pix_loss` (HF ViTMAE's knob),
               else `pixels`; or `hog`, `fourier` (`mmjax.targets`). The decoder's output
               width follows the target.
  loss.kind    `mse` (the paper); `l1`, `smooth_l1`, `cosine` (`mmjax.losses.LOSSES`).

`mask.kind=hard_patch` is HPM (Wang et al. 2023, "Hard Patches Mining"): the decoder grows a
second branch that predicts each patch's reconstruction loss, trained on the hidden patches
(`hpm.relative`: pairwise order, `mmjax.losses.pairwise_ranking_loss`); an EMA copy of the
whole model (`params["teacher"]`, decay `teacher.ema_start` -> `teacher.ema_end`,
`mmjax.methods.mask_teacher`) predicts the loss of every patch of the unmasked image, and the
mask hides the patches it expects to be hardest, a share growing from
`mask.hard_patch.alpha_start` to `alpha_end` over `train.steps` (the rest random). Params then
also hold `steps_seen`, counted by `after_step`. `mask.kind=attention_guided` is AttMask's mask:
the same EMA teacher's last-block [CLS] attention over the whole image picks the hidden patches.

`mae.target_ratio` < 1 predicts only part of the hidden patches: 4M's input and target budgets
(`mmjax.masking.multimodal_budget_masks`) on MAE's one modality draw MAE's visible count and,
among the hidden patches, `round(target_ratio * hidden)` targets; the decoder's blocks see the
visible and target tokens only (SelectiveMAE's cheaper decoder pass) and the loss counts the
targets. `predict` and `reconstruct` still decode every patch.

`mae.num_views` > 1 is DMJD's disjoint masking (Ma et al. 2023): each image is seen as
that many views whose visible sets never overlap (`mmjax.masking.disjoint_view_masks`), all
encoded in the same step as one batch of `V * B`, and the loss is the mean over the views.

`localmim.blocks` is LocalMIM (Wang et al. 2023): intermediate encoder blocks get light decoders
of their own and reconstruct finer-scale targets (`mmjax.methods.local_mim`).

`supervised.weight` > 0 is supervised MIM (SupMAE, Liang et al. 2022): a label head on the mean
of the encoder's visible patch tokens adds `weight` times the cross-entropy on `batch["label"]`
(`mmjax.methods.label_loss`); the encoder never sees the hidden patches for either loss.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from mmjax.config import ConfigError, dataclass_from_config, knob, section_config
from mmjax.losses import LOSSES, loss_section, masked_loss, masked_mse, token_loss
from mmjax.masking.dense import with_indices
from mmjax.masking.mask import Mask, num_visible_tokens, random_mask_from_noise
from mmjax.masking.multimodal import disjoint_view_masks, multimodal_budget_masks
from mmjax.masking.registry import MASKS, Layout, draw_mask, mask_section, needed_scores
from mmjax.masking.schedules import ramp
from mmjax.methods.common import IMAGE_SCORES, image_parts, image_scores, pool_tokens, reconstruction_images
from mmjax.methods.label_loss import LabelLossOptions, batch_labels, label_accuracy, label_cross_entropy
from mmjax.methods.local_mim import LocalMIMOptions, subregion_norm_pixels
from mmjax.methods.mask_teacher import (
    TEACHER_SCORES,
    HardPatchOptions,
    TeacherOptions,
    ema_step,
    loss_prediction,
    teacher_decay,
    trainable_flags,
    whole_image_mask,
    with_teacher,
)
from mmjax.methods.protocol import Batch, Params
from mmjax.methods.registry import register_method
from mmjax.models.config import DecoderConfig, ViTConfig, vit_config_from_section, vit_section
from mmjax.models.mae import MAEModel
from mmjax.models.transformer import last_block_cls_attention
from mmjax.parts import Chosen
from mmjax.targets import TARGETS, make_target, target_dim, target_section

# The paper's parts; `target` follows `mae.norm_pix_loss` (see `MAE.paper_target`).
LAYOUT = "grid"
PAPER_MASK = "random"
PAPER_LOSS = "mse"
# Score maps MAE gives guided mask kinds: the image's own and its EMA teacher's (`methods.mask_teacher`).
SUPPLIED_SCORES = (*IMAGE_SCORES, *TEACHER_SCORES)


class Forward(NamedTuple):
    """One forward pass: predictions `[B, N, D]`, HPM's predicted loss `[B, N]` (or None), the mask,
    the patches the loss counts `[B, N]`, SupMAE's class logits `[B, K]` (or None) and LocalMIM's
    per-block predictions (each `[B, N, p_h p_w C]`; empty without LocalMIM)."""

    pred: jax.Array
    predicted_loss: jax.Array | None
    mask: Mask
    counted: jax.Array
    logits: jax.Array | None
    local: tuple[jax.Array, ...]


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
    target_ratio: float = knob(
        1.0,
        "share of the hidden patches decoded and counted by the loss (4M's target budget)",
        low=0,
        high=1,
        low_open=True,
    )


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config, with MAE ViT-B/16 defaults; generated from the declarations."""
    return ml_collections.ConfigDict(
        {
            "method": "mae",
            "model": vit_section(),
            "decoder": section_config(DecoderConfig),
            "mae": section_config(MAEOptions),
            "hpm": section_config(HardPatchOptions),
            "teacher": section_config(TeacherOptions),
            "supervised": section_config(LabelLossOptions),
            "localmim": section_config(LocalMIMOptions),
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
    hpm: HardPatchOptions = HardPatchOptions()
    teacher: TeacherOptions = TeacherOptions()
    supervised: LabelLossOptions = LabelLossOptions()
    localmim: LocalMIMOptions = LocalMIMOptions()
    total_steps: int = 1  # train.steps: the length of HPM's curricula

    def __post_init__(self):
        if self.mask_part is None:
            object.__setattr__(self, "mask_part", MASKS.choose(PAPER_MASK))
        if self.target_part is None:
            object.__setattr__(self, "target_part", paper_target(self.options))
        if self.loss_part is None:
            object.__setattr__(self, "loss_part", LOSSES.choose(PAPER_LOSS))
        check_target_fits(self.target_part, self.model_config)
        self.localmim.check(self.model_config.depth, self.model_config.patch_size, self.model_config.scan)
        if self.localmim.enabled and self.options.target_ratio < 1:
            raise ConfigError(
                f"localmim.blocks={self.localmim.blocks} decodes every patch at each block; expected "
                f"mae.target_ratio=1, got {self.options.target_ratio}"
            )
        if self.options.target_ratio < 1 and (self.mask_part.name != "random" or self.options.num_views > 1):
            raise ConfigError(
                f"mae.target_ratio={self.options.target_ratio} draws 4M's random input and target budgets; expected "
                f"mask.kind='random' and mae.num_views=1, got {self.mask_part.name!r} and {self.options.num_views}"
            )
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
        paper = (PAPER_MASK, paper_target(options).name, PAPER_LOSS)
        mask, target, loss = image_parts(config, LAYOUT, paper, supplied=SUPPLIED_SCORES)
        steps = int(config.train.steps) if "train" in config else 1
        if steps < 1:
            raise ConfigError(f"train.steps={steps}: HPM's curricula need a positive number of steps")
        return cls(
            model_config=vit_config_from_section(config.model),
            decoder_config=dataclass_from_config(DecoderConfig, config.decoder, "decoder"),
            options=options,
            mask_part=mask,
            target_part=target,
            loss_part=loss,
            hpm=dataclass_from_config(HardPatchOptions, config.get("hpm") or {}, "hpm"),
            teacher=dataclass_from_config(TeacherOptions, config.get("teacher") or {}, "teacher"),
            supervised=dataclass_from_config(LabelLossOptions, config.get("supervised") or {}, "supervised"),
            localmim=dataclass_from_config(LocalMIMOptions, config.get("localmim") or {}, "localmim"),
            total_steps=steps,
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
    def mines_hard_patches(self) -> bool:
        """HPM: a loss predictor, an EMA teacher and masks from its predicted losses (`mask.kind=hard_patch`)."""
        return self.mask_part.name == "hard_patch"

    @property
    def has_teacher(self) -> bool:
        """An EMA teacher draws the masks: the mask kind reads one of `TEACHER_SCORES` (HPM, AttMask)."""
        return any(name in TEACHER_SCORES for name in needed_scores(self.mask_part))

    @property
    def model(self) -> MAEModel:
        out_dim = check_target_fits(self.target_part, self.model_config)
        return MAEModel(
            self.model_config,
            self.decoder_config,
            out_dim,
            loss_predictor=self.mines_hard_patches,
            num_classes=self.supervised.head_classes,
            local_blocks=self.localmim.blocks,
            local_decoder=self.localmim.decoder if self.localmim.enabled else None,
        )

    def _outputs(self, out: Any, mask: Mask, counted: jax.Array) -> Forward:
        """The model's output (nested as `MAEModel` documents it) as a `Forward`."""
        logits, local = None, ()
        if self.supervised.enabled:
            out, logits = out
        if self.localmim.enabled:
            out, local = out
        pred, predicted_loss = out if self.mines_hard_patches else (out, None)
        return Forward(pred, predicted_loss, mask, counted, logits, local)

    def _images(self, batch: Batch) -> jax.Array:
        """The batch's images `[B, H, W, C]`, repeated view-major to `[V * B, ...]` with `mae.num_views` = V."""
        if "image" not in batch:
            raise KeyError(f"MAE batches need an 'image' entry [B, H, W, C]; got keys {sorted(batch)}")
        images = batch["image"]
        views = self.options.num_views
        return images if views == 1 else jnp.concatenate([images] * views, axis=0)

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
        from `images` `[B, H, W, C]` (`prior_guided`); `step` places curricula. With
        `mae.num_views` = V > 1, the V disjoint views of each example, view-major: `[V * B, N]`.
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
        maps = image_scores(self.mask_part, images, self.model_config.patch_size, scores)
        layout = dataclasses.replace(self.layout, scores=maps, step=step, total_steps=self.total_steps)
        return draw_mask(self.mask_part, rng, batch_size, layout, self.mask_ratio, fixed_count=True)

    def _init_mask(self, images: jax.Array) -> Mask:
        batch_size = images.shape[0] // self.options.num_views
        zeros = jnp.zeros((batch_size, self.model_config.num_patches))
        scores = {name: zeros for name in TEACHER_SCORES}
        return self.make_mask(jax.random.key(0), batch_size, images=images, scores=scores)

    def _with_teacher(self, model_params: Params, teacher: Params, steps_seen: Any) -> Params:
        return with_teacher(model_params, teacher, steps_seen) if self.has_teacher else model_params

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        images = self._images(batch)
        params = nn.meta.unbox(self.model.init(rng, images, self._init_mask(images))["params"])
        # HPM's teacher starts as an exact copy of the model.
        return self._with_teacher(params, jax.tree.map(jnp.array, params), jnp.zeros((), jnp.float32))

    def param_axes(self) -> Params:
        cfg = self.model_config
        images = jax.ShapeDtypeStruct((self.options.num_views, *cfg.image_size, cfg.channels), jnp.float32)
        mask = jax.eval_shape(self._init_mask, images)
        shapes = jax.eval_shape(self.model.init, jax.random.key(0), images, mask)
        axes = nn.get_partition_spec(shapes)["params"]
        return self._with_teacher(axes, axes, jax.sharding.PartitionSpec())

    def trainable(self, params: Params) -> Params:
        """Everything but the EMA teacher and the step count."""
        return trainable_flags(params)

    def teacher_decay(self, steps_seen: jax.Array) -> jax.Array:
        """The teacher's EMA decay after `steps_seen` updates (`mask_teacher.teacher_decay`)."""
        return teacher_decay(self.teacher, steps_seen, self.total_steps)

    def after_step(self, params: Params, state_inputs: Any, step: jax.Array) -> Params:
        """With a teacher: its EMA update and one more `steps_seen`; nothing otherwise."""
        del state_inputs, step
        return ema_step(params, self.teacher, self.total_steps) if self.has_teacher else params

    def teacher_scores(self, params: Params, images: jax.Array) -> dict[str, jax.Array]:
        """The score maps `[B, N]` the mask kind reads from the EMA teacher, on the whole (unmasked) images.

        `predicted_loss`: the loss predictor's output (HPM). `attention`: the [CLS] row of the
        last encoder block's attention over the patches, averaged over heads (AttMask).
        """
        needed, teacher = needed_scores(self.mask_part), {"params": params["teacher"]}
        maps = {}
        if "predicted_loss" in needed:
            whole = whole_image_mask(images.shape[0], self.model_config.num_patches)
            maps["predicted_loss"] = self._outputs(
                self.model.apply(teacher, images, whole), whole, whole.mask
            ).predicted_loss
        if "attention" in needed:
            _, state = self.model.apply(teacher, images, method=MAEModel.encode, mutable=["intermediates"])
            blocks = state["intermediates"]["encoder"]["blocks"]
            maps["attention"] = last_block_cls_attention(blocks, self.model_config.depth)[:, 1:]
        return jax.lax.stop_gradient(maps)

    def draw_budget(self, rng: jax.Array, batch_size: int) -> tuple[Mask, jax.Array]:
        """`mae.target_ratio` < 1: 4M's budgets on one modality, `(mask, target_ids [B, T])`.

        MAE's visible count as the input budget, `round(target_ratio * hidden)` (at least 1)
        hidden patches as the target budget, both uniform.
        """
        num_patches = self.model_config.num_patches
        visible = num_visible_tokens(num_patches, self.mask_ratio)
        targets = max(1, round(self.options.target_ratio * (num_patches - visible)))
        budget = multimodal_budget_masks(rng, batch_size, (num_patches,), visible, targets)
        return with_indices(~budget.input_mask, visible), budget.target_ids

    def _forward(
        self, params: Params, batch: Batch, rng: jax.Array, noise: jax.Array | None, train: bool = False
    ) -> Forward:
        """The predictions, the mask and the patches the loss counts (`Forward`).

        With `train` and `mae.target_ratio` < 1 the loss counts (and the decoder computes) the
        budget's targets only; otherwise every hidden patch.
        """
        images = self._images(batch)
        if train and self.options.target_ratio < 1 and noise is None:
            mask, target_ids = self.draw_budget(rng, images.shape[0])
            out = self.model.apply({"params": params}, images, mask, jnp.concatenate([mask.ids_keep, target_ids], 1))
            counted = jnp.zeros_like(mask.mask).at[jnp.arange(images.shape[0])[:, None], target_ids].set(True)
            return self._outputs(out, mask, counted)
        scores = step = None
        if self.has_teacher:
            scores, step = self.teacher_scores(params, images), params["steps_seen"]
        mask = self.make_mask(rng, images.shape[0] // self.options.num_views, noise, images, scores, step)
        return self._outputs(self.model.apply({"params": params}, images, mask), mask, mask.mask)

    def predict(
        self, params: Params, batch: Batch, rng: jax.Array, noise: jax.Array | None = None
    ) -> tuple[jax.Array, Mask]:
        """Patch predictions `[B, N, D]` of the target (normalised-patch units with norm_pix) and the mask.

        With `mae.num_views` = V > 1 both cover the V views, view-major: `[V * B, ...]`.
        """
        forward = self._forward(params, batch, rng, noise)
        return forward.pred, forward.mask

    def loss(
        self,
        params: Params,
        batch: Batch,
        rng: jax.Array,
        train: bool = True,
        noise: jax.Array | None = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """`loss.kind` (MSE) between prediction and target on hidden patches.

        `rng` draws the mask, `noise` overrides it. HPM adds `hpm.weight` times the loss
        predictor's objective against each hidden patch's reconstruction loss (no gradient);
        SupMAE adds `supervised.weight` times the label cross-entropy.
        """
        del train  # MAE pretraining uses no dropout; the loss is always the training one.
        forward = self._forward(params, batch, rng, noise, train=True)
        pred, predicted_loss, mask, counted, logits = forward[:5]
        images = self._images(batch)
        target = make_target(self.target_part, images, self.model_config.patch_size)
        loss = masked_loss(self.loss_part, pred, target, counted)
        metrics = {"loss": loss, "mask_ratio": jnp.mean(mask.mask.astype(jnp.float32))}
        if self.options.target_ratio < 1:
            metrics["target_fraction"] = jnp.mean(counted.astype(jnp.float32))
        if forward.local:
            patch = self.model_config.patch_size
            local = [
                masked_mse(p, subregion_norm_pixels(images, patch, r), counted)
                for p, r in zip(forward.local, self.localmim.regions, strict=True)
            ]
            metrics.update({f"local_loss_block_{b}": v for b, v in zip(self.localmim.blocks, local, strict=True)})
            metrics["reconstruction_loss"] = loss
            loss = loss + self.localmim.weight * jnp.mean(jnp.stack(local))
            metrics["loss"] = loss
        if logits is not None:
            labels = jnp.tile(batch_labels(batch, self.supervised.num_classes), self.options.num_views)
            label_loss = label_cross_entropy(logits, labels, self.supervised.label_smoothing)
            metrics.update(
                reconstruction_loss=loss, label_loss=label_loss, label_accuracy=label_accuracy(logits, labels)
            )
            loss = loss + self.supervised.weight * label_loss
            metrics["loss"] = loss
        if predicted_loss is None:
            return loss, metrics
        learned = loss_prediction(self.hpm, predicted_loss, token_loss(self.loss_part, pred, target), mask.mask)
        total = loss + self.hpm.weight * learned
        args, steps_seen = self.mask_part.args, params["steps_seen"]
        metrics.setdefault("reconstruction_loss", loss)
        metrics.update(
            loss=total,
            loss_prediction=learned,
            hard_share=ramp(steps_seen, self.total_steps, args.alpha_start, args.alpha_end),
            teacher_decay=self.teacher_decay(steps_seen),
        )
        return total, metrics

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

    def encoder(self, params: Params) -> tuple[ViTConfig, Params]:
        """The `ViTEncoder` that `features` runs, for export."""
        return self.model_config, params["encoder"]

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
