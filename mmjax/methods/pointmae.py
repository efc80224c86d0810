"""Point-MAE (Pang et al. 2022): group a cloud into FPS + kNN patches, hide 60%, rebuild them (Chamfer loss).

`mask.kind` picks the group mask: `random` (the paper's) or `region` (the groups nearest to
`mask.region.num_regions` random seed groups: Point-MAE's block masking, contiguous regions).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from mmjax.config import dataclass_from_config, knob, section_config
from mmjax.losses import masked_mean
from mmjax.masking.mask import Mask
from mmjax.masking.points import PointPatches, group_points
from mmjax.masking.registry import MASKS, Layout, draw_mask, mask_section, resolve_mask
from mmjax.methods.protocol import Batch, Params
from mmjax.methods.registry import register_method
from mmjax.models.config import AttentionOption, transformer_config
from mmjax.models.pointmae import PointMAEModel
from mmjax.ops.pointcloud import chamfer_distance
from mmjax.parts import Chosen

POOLS = ("mean", "max", "mean_max", "tokens")
LAYOUT = "points"
PAPER_MASK = "random"


@dataclasses.dataclass(frozen=True)
class PointMAEOptions:
    """`pointmae`: grouping and masking, with Point-MAE's ShapeNet defaults."""

    num_groups: int = knob(64, "FPS centers (groups) per cloud", low=1)
    group_size: int = knob(32, "points per group (the kNN of each center)", low=1)
    mask_ratio: float = knob(0.6, "fraction of groups hidden", low=0, high=1, low_open=True, high_open=True)
    pointnet_hidden: tuple[int, int] = knob(
        (128, 256), "the mini-PointNet's first MLP (the second is 2 * last -> width)"
    )


@dataclasses.dataclass(frozen=True)
class EncoderSection(AttentionOption):
    """`model`: the encoder transformer (Point-MAE: 384 wide, 12 blocks, 6 heads)."""

    width: int = knob(384, "token width", low=1)
    depth: int = knob(12, "transformer blocks", low=0)
    heads: int = knob(6, "attention heads", low=1)
    mlp_dim: int = knob(1536, "hidden size of the MLPs", low=1)


@dataclasses.dataclass(frozen=True)
class DecoderSection:
    """`decoder`: the decoder transformer (Point-MAE: 384 wide, 4 blocks, 6 heads)."""

    width: int = knob(384, "token width", low=1)
    depth: int = knob(4, "transformer blocks", low=0)
    heads: int = knob(6, "attention heads", low=1)
    mlp_dim: int = knob(1536, "hidden size of the MLPs", low=1)


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config (Point-MAE's ShapeNet defaults), from the declarations."""
    return ml_collections.ConfigDict(
        {
            "method": "pointmae",
            "model": section_config(EncoderSection),
            "decoder": section_config(DecoderSection),
            "pointmae": section_config(PointMAEOptions),
            "mask": mask_section(LAYOUT, PAPER_MASK),
        }
    )


@dataclasses.dataclass(frozen=True)
class PointMAE:
    """The Point-MAE method over batches `{"points": float32 [B, P, 3]}`; `mask_part` None = `random`."""

    input_key = "points"  # the prepared batch entry `features` reads (export)

    options: PointMAEOptions
    encoder: EncoderSection
    decoder: DecoderSection
    mask_part: Chosen | None = None

    def __post_init__(self):
        if self.mask_part is None:
            object.__setattr__(self, "mask_part", MASKS.choose(PAPER_MASK))

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> PointMAE:
        options = dataclass_from_config(PointMAEOptions, config.pointmae, "pointmae")
        data = config.data if "data" in config else {}
        num_points = data["num_points"] if "num_points" in data else None  # checked when the data section has it
        if num_points is not None and options.num_groups > num_points:
            raise ValueError(f"pointmae.num_groups={options.num_groups} exceeds data.num_points={num_points}")
        if num_points is not None and options.group_size > num_points:
            raise ValueError(f"pointmae.group_size={options.group_size} exceeds data.num_points={num_points}")
        return cls(
            options,
            dataclass_from_config(EncoderSection, config.model, "model"),
            dataclass_from_config(DecoderSection, config.decoder, "decoder"),
            resolve_mask(config.get("mask"), LAYOUT, PAPER_MASK),
        )

    @property
    def model(self) -> PointMAEModel:
        e, d = self.encoder, self.decoder
        o = self.options
        return PointMAEModel(
            group_size=o.group_size,
            width=e.width,
            transformer=transformer_config(e),
            decoder_width=d.width,
            decoder_transformer=transformer_config(e, d),
            pointnet_hidden=o.pointnet_hidden,
        )

    def _points(self, batch: Batch) -> jax.Array:
        if "points" not in batch:
            raise KeyError(f"Point-MAE batches need a 'points' entry [B, P, 3]; got keys {sorted(batch)}")
        return batch["points"]

    def group(self, points: jax.Array) -> PointPatches:
        """FPS centers (from point 0, as the CUDA op) and kNN groups relative to their centers."""
        return group_points(points, self.options.num_groups, self.options.group_size)

    def make_mask(self, rng: jax.Array, centers: jax.Array) -> Mask:
        """The chosen kind's fixed-count mask over the groups, from their centers `[B, G, 3]`."""
        layout = Layout(LAYOUT, (self.options.num_groups,), centers=centers)
        return draw_mask(self.mask_part, rng, centers.shape[0], layout, self.options.mask_ratio, fixed_count=True)

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        patches = self.group(self._points(batch))
        mask = self.make_mask(jax.random.key(0), patches.centers)
        variables = self.model.init(rng, patches.patches, patches.centers, mask.ids_keep, mask.ids_restore)
        return nn.meta.unbox(variables["params"])

    def param_axes(self) -> Params:
        o = self.options
        groups = jax.ShapeDtypeStruct((1, o.num_groups, o.group_size, 3), jnp.float32)
        centers = jax.ShapeDtypeStruct((1, o.num_groups, 3), jnp.float32)
        mask = jax.eval_shape(lambda: self.make_mask(jax.random.key(0), jnp.zeros((1, o.num_groups, 3))))
        shapes = jax.eval_shape(self.model.init, jax.random.key(0), groups, centers, mask.ids_keep, mask.ids_restore)
        return nn.get_partition_spec(shapes)["params"]

    def predict(self, params: Params, batch: Batch, rng: jax.Array) -> tuple[jax.Array, PointPatches, jax.Array]:
        """`(pred [B, G, K, 3], patches, hidden bool [B, G])` for the chosen group mask (random 60%)."""
        patches = self.group(self._points(batch))
        mask = self.make_mask(rng, patches.centers)
        pred = self.model.apply({"params": params}, patches.patches, patches.centers, mask.ids_keep, mask.ids_restore)
        return pred, patches, mask.mask

    def loss(self, params: Params, batch: Batch, rng: jax.Array, train: bool = True) -> tuple[jax.Array, dict]:
        """L2 Chamfer distance between predicted and true points of the hidden groups, averaged over them."""
        del train  # no dropout
        pred, patches, hidden = self.predict(params, batch, rng)
        loss = masked_mean(chamfer_distance(pred, patches.patches), hidden)
        return loss, {"loss": loss, "mask_ratio": jnp.mean(hidden.astype(jnp.float32))}

    def features(self, params: Params, inputs: jax.Array, pool: str = "mean") -> jax.Array:
        """Encoder features of whole clouds `[B, P, 3]`.

        `mean` / `max` over groups -> `[B, D]`; `mean_max` -> `[B, 2D]` (both, as Point-MAE's
        classifier); `tokens` -> `[B, G, D]`.
        """
        patches = self.group(inputs)
        tokens = self.model.apply({"params": params}, patches.patches, patches.centers, method=PointMAEModel.encode)
        if pool == "mean":
            return jnp.mean(tokens, axis=1)
        if pool == "max":
            return jnp.max(tokens, axis=1)
        if pool == "mean_max":
            return jnp.concatenate([jnp.mean(tokens, axis=1), jnp.max(tokens, axis=1)], axis=-1)
        if pool == "tokens":
            return tokens
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")


@register_method("pointmae", protocols=("points_probe",))
def build_pointmae(config: ml_collections.ConfigDict) -> PointMAE:
    return PointMAE.from_config(config)


__all__ = ["PointMAE", "build_pointmae", "default_config"]
