"""ReMasker (Du et al. 2024): impute a table by masked autoencoding of its observed cells.

Mask = natural missingness OR a random re-mask of observed cells; the encoder sees the
observed, not re-masked cells; the loss is on the re-masked observed cells plus the
reconstruction of the visible ones (`remasker.visible_loss_weight`, 1 as in the reference);
at inference every observed cell is shown and the missing ones are predicted.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.config import dataclass_from_config, knob, section_config
from mmjax.losses import masked_mean
from mmjax.masking.tables import RemaskerMasks, remasker_masks
from mmjax.methods.common import pool_tokens
from mmjax.methods.protocol import Batch, Params
from mmjax.methods.registry import register_method
from mmjax.models.config import AttentionOption, transformer_config
from mmjax.models.table_mae import TableMAE


@dataclasses.dataclass(frozen=True)
class ReMaskerOptions(AttentionOption):
    """`remasker`: model size and masking of ReMasker.

    `groups` (one entry per column, optional) ties columns that are masked together:
    the one-hot columns of one categorical variable share a group id, so the random
    re-mask hides or shows them all at once (a half-shown one-hot would give the answer).
    """

    # num_columns, remask_ratio, visible_loss_weight, the widths and attention_impl are checked in __post_init__
    # (ReMaskerOptions is also built directly, by `mmjax.impute.MaskedImputer`).
    num_columns: int = knob(0, "cells per row (must be set, >= 1)")
    width: int = knob(64, "encoder width", low=1)
    depth: int = knob(4, "encoder blocks", low=0)
    heads: int = knob(4, "encoder attention heads (width must be a multiple)", low=1)
    mlp_dim: int = knob(128, "encoder MLP hidden size", low=1)
    decoder_width: int = knob(64, "decoder width", low=1)
    decoder_depth: int = knob(2, "decoder blocks", low=0)
    decoder_heads: int = knob(4, "decoder attention heads (decoder_width must be a multiple)", low=1)
    decoder_mlp_dim: int = knob(128, "decoder MLP hidden size", low=1)
    remask_ratio: float = knob(0.5, "fraction of each row's observed cells re-masked per step, in (0, 1)")
    visible_loss_weight: float = knob(1.0, "weight of the visible cells' reconstruction in the loss (the reference: 1)")
    groups: tuple[int, ...] | None = knob(None, "a group id per column: columns masked together (one-hot variables)")
    periodic_features: int = knob(0, "learned frequencies per column of a periodic value embedding; 0 = none", low=0)
    periodic_scale: float = knob(0.5, "std of the periodic frequencies' initialization", low=0)

    def __post_init__(self):
        if self.num_columns < 1:
            raise ValueError(f"remasker.num_columns must be >= 1 (cells per row), got {self.num_columns}")
        if not 0.0 < self.remask_ratio < 1.0:
            raise ValueError(f"remasker.remask_ratio must be in (0, 1), got {self.remask_ratio}")
        if self.visible_loss_weight < 0:
            raise ValueError(f"remasker.visible_loss_weight must be >= 0, got {self.visible_loss_weight}")
        self.check_attention_impl("remasker")
        for name in ("width", "decoder_width"):
            heads = self.heads if name == "width" else self.decoder_heads
            if getattr(self, name) % heads:
                raise ValueError(f"remasker.{name}={getattr(self, name)} must be divisible by its heads ({heads})")
        if self.groups is not None:
            groups = np.asarray(self.groups)
            if groups.shape != (self.num_columns,) or set(groups.tolist()) != set(range(int(groups.max()) + 1)):
                raise ValueError(
                    f"remasker.groups must give each of the {self.num_columns} columns a group id in 0..G-1 "
                    f"with every id used; got {self.groups}"
                )


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config (`remasker.num_columns` must be set), from the declarations."""
    return ml_collections.ConfigDict({"method": "remasker", "remasker": section_config(ReMaskerOptions)})


def remasker_loss(pred: jax.Array, target: jax.Array, masks: RemaskerMasks, *, visible_weight: float) -> jax.Array:
    """Mean squared error on the re-masked observed cells + `visible_weight` x the visible cells' MSE.

    Naturally missing cells never count: their targets are unknown.

    Args:
      pred, target: float `[B, D]` (target finite wherever observed).
      masks: the step's `RemaskerMasks`.

    Returns:
      float32 scalar.
    """
    error = jnp.square(pred.astype(jnp.float32) - jnp.where(masks.missing, 0.0, target).astype(jnp.float32))
    loss = masked_mean(error, masks.loss)
    if visible_weight:
        loss = loss + visible_weight * masked_mean(error, masks.visible)
    return loss


@dataclasses.dataclass(frozen=True)
class ReMasker:
    """The ReMasker method: `init`, `loss`, `param_axes`, `impute` over a params pytree.

    Batches are dicts with `values` float `[B, D]` (standardized; NaN = missing) and,
    optionally, `observed` bool `[B, D]` (default: not NaN).
    """

    options: ReMaskerOptions

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> ReMasker:
        return cls(dataclass_from_config(ReMaskerOptions, config.remasker, "remasker"))

    @property
    def model(self) -> TableMAE:
        o = self.options
        return TableMAE(
            num_columns=o.num_columns,
            width=o.width,
            transformer=transformer_config(o),
            decoder_width=o.decoder_width,
            decoder_transformer=transformer_config(
                o, depth=o.decoder_depth, heads=o.decoder_heads, mlp_dim=o.decoder_mlp_dim
            ),
            periodic_features=o.periodic_features,
            periodic_scale=o.periodic_scale,
        )

    def _table(self, batch: Batch) -> tuple[jax.Array, jax.Array]:
        if "values" not in batch:
            raise KeyError(f"ReMasker batches need a 'values' entry [B, D]; got keys {sorted(batch)}")
        values = jnp.asarray(batch["values"], jnp.float32)
        if values.ndim != 2 or values.shape[1] != self.options.num_columns:
            raise ValueError(
                f"batch['values'] must be [B, {self.options.num_columns}] (remasker.num_columns), got {values.shape}"
            )
        observed = batch.get("observed")
        observed = ~jnp.isnan(values) if observed is None else jnp.asarray(observed, bool)
        return jnp.where(observed, values, 0.0), observed

    def make_masks(self, rng: jax.Array, observed: jax.Array) -> RemaskerMasks:
        """ReMasker masks for a bool `[B, D]` observed table, drawn per column group."""
        groups = self.options.groups
        if groups is None:
            return remasker_masks(rng, observed, self.options.remask_ratio)
        ids = jnp.asarray(groups)
        num_groups = int(max(groups)) + 1
        # A group counts as observed when all of its columns are.
        group_observed = jax.ops.segment_min(observed.T.astype(jnp.int32), ids, num_groups).T.astype(bool)
        g = remasker_masks(rng, group_observed, self.options.remask_ratio)
        remasked = g.remasked[:, ids] & observed
        hidden = ~observed | remasked
        return RemaskerMasks(missing=~observed, remasked=remasked, hidden=hidden, visible=~hidden)

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        values, observed = self._table(batch)
        return nn.meta.unbox(self.model.init(rng, values, ~observed)["params"])

    def param_axes(self) -> Params:
        shape = jax.ShapeDtypeStruct((1, self.options.num_columns), jnp.float32)
        hidden = jax.ShapeDtypeStruct((1, self.options.num_columns), jnp.bool_)
        shapes = jax.eval_shape(self.model.init, jax.random.key(0), shape, hidden)
        return nn.get_partition_spec(shapes)["params"]

    input_key = "values"  # the prepared batch entry `features` reads (export)

    def features(self, params: Params, inputs: jax.Array, pool: str = "cls") -> jax.Array:
        """The encoder's outputs for table rows float `[B, D]` (standardized; NaN = missing, not shown).

        `cls` -> `[B, W]` the cls token; `mean` -> `[B, W]` the mean of the shown cells' tokens;
        `tokens` -> `[B, 1 + D, W]`: the cls token, the shown cells in column order, then padding.
        """
        values = jnp.asarray(inputs, jnp.float32)
        hidden = jnp.isnan(values)
        _, state = self.model.apply(
            {"params": params}, jnp.where(hidden, 0.0, values), hidden, mutable=["intermediates"]
        )
        tokens = state["intermediates"]["encoded"][0]
        if pool != "mean":
            return pool_tokens(tokens, pool)
        shown = jnp.sum(~hidden, axis=1, keepdims=True)  # [B, 1]
        position = jnp.arange(tokens.shape[1])[None]
        weights = ((position >= 1) & (position <= shown)).astype(jnp.float32)[..., None]
        return jnp.sum(tokens * weights, axis=1) / jnp.maximum(jnp.sum(weights, axis=1), 1.0)

    def predict(self, params: Params, values: jax.Array, hidden: jax.Array) -> jax.Array:
        """`[B, D]` predictions of every cell from the cells not `hidden`."""
        return self.model.apply({"params": params}, values, hidden)

    def loss(self, params: Params, batch: Batch, rng: jax.Array, train: bool = True) -> tuple[jax.Array, dict]:
        """Masked MSE on re-masked observed cells; `rng` draws the re-mask."""
        del train  # no dropout
        values, observed = self._table(batch)
        masks = self.make_masks(rng, observed)
        pred = self.predict(params, values, masks.hidden)
        loss = remasker_loss(pred, values, masks, visible_weight=self.options.visible_loss_weight)
        metrics = {
            "loss": loss,
            "remasked_fraction": jnp.mean(masks.remasked.astype(jnp.float32)),
            "missing_fraction": jnp.mean(masks.missing.astype(jnp.float32)),
        }
        return loss, metrics

    def impute(self, params: Params, values: jax.Array, observed: jax.Array) -> jax.Array:
        """Fill the missing cells.

        Args:
          values: float `[B, D]` standardized (anything at missing cells, NaN included).
          observed: bool `[B, D]`.

        Returns:
          float32 `[B, D]`: observed cells unchanged, missing cells predicted from every observed cell.
        """
        values = jnp.asarray(values, jnp.float32)
        observed = jnp.asarray(observed, bool)
        clean = jnp.where(observed, values, 0.0)
        pred = self.predict(params, clean, ~observed)
        return jnp.where(observed, values, pred)

    def impute_averaged(
        self, params: Params, values: jax.Array, observed: jax.Array, rng: jax.Array, passes: int, ratio: float
    ) -> jax.Array:
        """`impute`, with each missing cell's prediction averaged over `passes` views of the row.

        Pass 0 shows every observed cell (plain `impute`); each further pass also hides a
        fresh random `ratio` of the row's observed cells (the training re-mask, drawn per
        column group) and predicts the missing cells from the rest. Averaging these views
        (test-time augmentation, an addition to ReMasker) smooths the predictions the way
        an ensemble does, at `passes` x the inference cost and no extra training.

        Returns:
          float32 `[B, D]`: observed cells unchanged, missing cells the mean prediction.
        """
        values = jnp.asarray(values, jnp.float32)
        observed = jnp.asarray(observed, bool)
        full_view = self.impute(params, values, observed)  # pass 0; its missing cells are the predictions
        if passes == 1:
            return full_view
        clean = jnp.where(observed, values, 0.0)
        view = dataclasses.replace(self, options=dataclasses.replace(self.options, remask_ratio=ratio))

        def one_pass(key):
            return self.predict(params, clean, view.make_masks(key, observed).hidden)

        extra = jax.lax.map(one_pass, jax.random.split(rng, passes - 1))
        return jnp.where(observed, values, (full_view + extra.sum(axis=0)) / passes)


@register_method("remasker", protocols=("tables_imputation",))
def build_remasker(config: ml_collections.ConfigDict) -> ReMasker:
    return ReMasker.from_config(config)


__all__ = ["ReMasker", "ReMaskerOptions", "build_remasker", "default_config", "remasker_loss"]
