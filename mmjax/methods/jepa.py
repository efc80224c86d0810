"""I-JEPA (Assran et al. 2023): predict an EMA target encoder's features of hidden blocks from a context block.

One step: multi-block masks (4 target blocks, 1 context block minus the targets); the
context encoder sees only the context tokens; the target encoder (an EMA copy, never
trained by gradients) sees the whole image and its tokens, LayerNorm-ed without affine,
are the targets at the target-block positions; a narrow predictor fills mask tokens at
those positions; smooth L1 on target tokens only (REFERENCE.md). After the optimizer,
`after_step` moves the target encoder towards the context encoder with a momentum that
rises linearly from 0.996 to 1.0 over `train.steps`.

The encoders are mmjax's `ViTEncoder` without a cls token, as I-JEPA (no cls parameter, no
cls row in attention); `features` are the target encoder's, which the paper evaluates, pooled
as the mean of the patch tokens.

`capi.num_clusters` > 0 is CAPI-style online-cluster targets (`mmjax.methods.cluster_targets`):
the hidden patches predict the teacher's Sinkhorn-balanced cluster assignments instead of its
features; params then also hold `clusters` (prototypes and the prediction head, trained).

`predictor.position_noise` > 0 is StoP / FlexPredict (Bar et al. 2024): the predictor's mask
tokens sit at stochastic positions (`mmjax.models.jepa.JEPAPredictor`).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from mmjax.config import dataclass_from_config, knob, section_config
from mmjax.masking.multiblock import MultiBlockMasks, multiblock_masks
from mmjax.methods.cluster_targets import ClusterOptions, cluster_losses, init_clusters
from mmjax.methods.common import pool_tokens
from mmjax.methods.feature_targets import batch_feature_std, feature_loss, layer_norm_no_affine
from mmjax.methods.protocol import Batch, Params
from mmjax.methods.registry import register_method
from mmjax.models.config import ViTConfig, vit_config_from_section, vit_section
from mmjax.models.jepa import JEPAModel, PredictorConfig


@dataclasses.dataclass(frozen=True)
class JEPAOptions:
    """`jepa`: I-JEPA's own knobs (masks and EMA), with the paper's defaults."""

    num_targets: int = knob(4, "target blocks per image", low=1)
    target_scale: tuple[float, float] = knob((0.15, 0.2), "(lo, hi) share of the grid per target block")
    target_aspect: tuple[float, float] = knob((0.75, 1.5), "(lo, hi) aspect ratio of a target block")
    context_scale: tuple[float, float] = knob((0.85, 1.0), "(lo, hi) share of the grid of the context block")
    min_keep: int = knob(10, "fewest tokens a block keeps", low=1)
    momentum_start: float = knob(0.996, "EMA momentum of the first update", low=0, high=1)
    momentum_end: float = knob(1.0, "EMA momentum at train.steps (linear in between)", low=0, high=1)

    def __post_init__(self):
        for name in ("target_scale", "target_aspect", "context_scale"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 2 or not 0 < value[0] <= value[1]:
                raise ValueError(f"jepa.{name} must be (lo, hi) with 0 < lo <= hi, got {getattr(self, name)}")
            object.__setattr__(self, name, value)
        if not 0.0 <= self.momentum_start <= self.momentum_end <= 1.0:
            raise ValueError(
                f"jepa.momentum_start={self.momentum_start} and jepa.momentum_end={self.momentum_end} "
                f"must satisfy 0 <= start <= end <= 1"
            )


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config: I-JEPA ViT-H/14 at 224 px, generated from the declarations."""
    return ml_collections.ConfigDict(
        {
            "method": "jepa",
            "model": vit_section(size="huge", image_size=224, patch_size=14),
            "predictor": section_config(PredictorConfig),
            "jepa": section_config(JEPAOptions),
            "capi": section_config(ClusterOptions),
        }
    )


@dataclasses.dataclass(frozen=True)
class JEPA:
    """The I-JEPA method; batches are dicts with `image` `[B, H, W, C]` (normalized floats).

    Params: `{"context_encoder", "target_encoder", "predictor", "momentum"}`; the target
    encoder and `momentum` (the value the next EMA update uses, a scalar) are not trained.
    """

    model_config: ViTConfig
    predictor_config: PredictorConfig
    options: JEPAOptions
    total_steps: int
    clusters: ClusterOptions = ClusterOptions()

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> JEPA:
        options = dataclass_from_config(JEPAOptions, config.jepa, "jepa")
        model_config = vit_config_from_section(config.model)
        if min(model_config.grid) < 2:
            raise ValueError(f"jepa needs a token grid of at least 2 x 2, got {model_config.grid} (model.image_size)")
        steps = int(config.train.steps) if "train" in config else 1
        if steps < 1:
            raise ValueError(f"train.steps must be positive for the EMA momentum schedule, got {steps}")
        return cls(
            model_config,
            dataclass_from_config(PredictorConfig, config.predictor, "predictor"),
            options,
            steps,
            dataclass_from_config(ClusterOptions, config.get("capi") or {}, "capi"),
        )

    @property
    def model(self) -> JEPAModel:
        return JEPAModel(self.model_config, self.predictor_config)

    def _images(self, batch: Batch) -> jax.Array:
        if "image" not in batch:
            raise KeyError(f"I-JEPA batches need an 'image' entry [B, H, W, C]; got keys {sorted(batch)}")
        return batch["image"]

    def make_masks(self, rng: jax.Array, batch_size: int, step: jax.Array | None = None) -> MultiBlockMasks:
        """Multi-block masks over the token grid (`mmjax.masking.multiblock_masks`); `step` is for subclasses."""
        del step
        o = self.options
        return multiblock_masks(
            rng,
            batch_size,
            self.block_grid,
            num_targets=o.num_targets,
            target_scale=o.target_scale,
            target_aspect=o.target_aspect,
            context_scale=o.context_scale,
            min_keep=o.min_keep,
        )

    @property
    def block_grid(self) -> tuple[int, int]:
        """The `(H, W)` grid the multi-block masks are drawn on: the ViT's token grid."""
        return self.model_config.grid

    def momentum(self, step: jax.Array) -> jax.Array:
        """EMA momentum for the update after `step` earlier updates: linear start -> end over `train.steps`."""
        o = self.options
        progress = jnp.minimum(jnp.asarray(step, jnp.float32) / self.total_steps, 1.0)
        return o.momentum_start + (o.momentum_end - o.momentum_start) * progress

    @staticmethod
    def _lengths(masks: MultiBlockMasks) -> tuple[jax.Array, jax.Array]:
        """Real context length (shared by the batch) and real target-block length."""
        return jnp.sum(masks.context_valid[0]).astype(jnp.int32), jnp.sum(masks.target_valid[0, 0]).astype(jnp.int32)

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        inputs = self._images(batch)
        masks = self.make_masks(jax.random.key(0), inputs.shape[0])
        context_len, target_len = self._lengths(masks)
        params = nn.meta.unbox(
            self.model.init(rng, inputs, masks.context_ids, context_len, masks.target_ids, target_len)["params"]
        )
        # The target encoder starts as an exact copy of the context encoder.
        params = {**params, "target_encoder": jax.tree.map(jnp.array, params["context_encoder"])}
        if self.clusters.enabled:
            params["clusters"] = init_clusters(
                jax.random.fold_in(rng, 1), self.model_config.width, self.clusters.num_clusters
            )
        return {**params, "momentum": jnp.asarray(self.options.momentum_start, jnp.float32)}

    def param_axes(self) -> Params:
        shapes = jax.eval_shape(lambda: self.model.init(jax.random.key(0), self._example_input(), *self._init_masks()))
        axes = nn.get_partition_spec(shapes)["params"]
        if self.clusters.enabled:
            replicated = jax.sharding.PartitionSpec()
            axes["clusters"] = {"prototypes": replicated, "head": {"kernel": replicated, "bias": replicated}}
        return {**axes, "momentum": jax.sharding.PartitionSpec()}

    def _example_input(self) -> jax.Array:
        """One zero model input `[1, H, W, C]` (for shapes)."""
        return jnp.zeros((1, *self.model_config.image_size, self.model_config.channels))

    def _init_masks(self):
        masks = self.make_masks(jax.random.key(0), 1)
        context_len, target_len = self._lengths(masks)
        return masks.context_ids, context_len, masks.target_ids, target_len

    def trainable(self, params: Params) -> Params:
        """Everything but the EMA target encoder and the scalars (momentum, a subclass's `steps_seen`)."""
        frozen = ("target_encoder", "momentum", "steps_seen")
        return {name: jax.tree.map(lambda _, t=name not in frozen: t, value) for name, value in params.items()}

    def predict(
        self, params: Params, images: jax.Array, masks: MultiBlockMasks, noise_rng: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        """Predictions `[B, M, T, D]` for the target positions, and the context features `[B, Nc, D]`.

        `noise_rng` draws StoP's position noise (`predictor.position_noise` > 0).
        """
        context_len, target_len = self._lengths(masks)
        variables = {"params": params}
        context = self.model.apply(variables, images, masks.context_ids, context_len, method=JEPAModel.encode_context)
        pred = self.model.apply(
            variables,
            context,
            masks.context_ids,
            context_len,
            masks.target_ids,
            target_len,
            noise_rng,
            method=JEPAModel.predict,
        )
        return pred, context

    def loss(
        self, params: Params, batch: Batch, rng: jax.Array, train: bool = True
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Smooth L1 between predictions and normalized target features on target-block tokens
        (with `capi.num_clusters`: cross-entropy against the teacher's cluster assignments, plus the
        prototypes' clustering loss).

        Metrics: the collapse monitor (per-dimension std across the batch of the mean
        token of the target encoder and of the context encoder: `*_std_mean`, `*_std_min`),
        the EMA `momentum` of this step's update, and the context and target sizes.
        """
        del train
        images = self._images(batch)
        noise_rng = None
        if self.predictor_config.position_noise:  # I-JEPA's draws stay as they were without StoP
            rng, noise_rng = jax.random.split(rng)
        masks = self.make_masks(rng, images.shape[0], params.get("steps_seen"))
        pred, context = self.predict(params, images, masks, noise_rng)
        raw_targets = self.model.apply({"params": params}, images, method=JEPAModel.encode_target)
        targets = jax.lax.stop_gradient(layer_norm_no_affine(raw_targets, self.model_config.layer_norm_eps))
        extra = {}
        if self.clusters.enabled:
            predicted, clustering, extra = cluster_losses(
                self.clusters, params["clusters"], pred, targets, masks.target_ids, masks.target_valid
            )
            loss = predicted + self.clusters.cluster_weight * clustering
            extra.update(prediction_loss=predicted, clustering_loss=clustering)
        else:
            picked = jax.vmap(lambda t, ids: t[ids])(targets, masks.target_ids)  # [B, M, T, D]
            loss = feature_loss(pred, picked, masks.target_valid, "smooth_l1")
        valid = masks.context_valid[..., None].astype(jnp.float32)
        context_mean = jnp.sum(context * valid, axis=1) / jnp.maximum(jnp.sum(valid, axis=1), 1.0)
        target_std = batch_feature_std(jax.lax.stop_gradient(jnp.mean(raw_targets, axis=1)))
        context_std = batch_feature_std(jax.lax.stop_gradient(context_mean))
        context_len, target_len = self._lengths(masks)
        metrics = {
            "loss": loss,
            "target_std_mean": target_std["mean_std"],
            "target_std_min": target_std["min_std"],
            "context_std_mean": context_std["mean_std"],
            "context_std_min": context_std["min_std"],
            "momentum": params["momentum"],
            "context_tokens": context_len.astype(jnp.float32),
            "target_tokens": target_len.astype(jnp.float32) * masks.target_ids.shape[1],
            **extra,
        }
        return loss, metrics

    def after_step(self, params: Params, state_inputs: None, step: jax.Array) -> Params:
        """EMA: `target <- m * target + (1 - m) * context` with `m = momentum(step)`; counts `steps_seen` if kept."""
        del state_inputs
        m = self.momentum(step)
        target = jax.tree.map(lambda t, c: m * t + (1.0 - m) * c, params["target_encoder"], params["context_encoder"])
        params = {**params, "target_encoder": target, "momentum": self.momentum(step + 1)}
        if "steps_seen" in params:
            params["steps_seen"] = params["steps_seen"] + 1.0
        return params

    def features(self, params: Params, images: jax.Array, pool: str = "mean") -> jax.Array:
        """Target-encoder features of whole images (the paper evaluates the target encoder).

        I-JEPA has no cls token: `mean` (and `cls`) -> `[B, D]` mean of the patch tokens;
        `tokens` -> `[B, 1 + N, D]`, that mean as the first row (where other methods put
        their cls token), then the patch tokens.
        """
        tokens = self.model.apply({"params": params}, images, method=JEPAModel.features)
        return pool_tokens(tokens, pool, cls_token=False)

    def encoder(self, params: Params) -> tuple[ViTConfig, Params]:
        """The target `ViTEncoder` (no cls token) that `features` runs, for export and fine-tuning."""
        return self.model_config, params["target_encoder"]


@register_method("jepa", protocols=("linear_probe",))
def build_jepa(config: ml_collections.ConfigDict) -> JEPA:
    return JEPA.from_config(config)


__all__ = ["JEPA", "JEPAOptions", "build_jepa", "default_config"]
