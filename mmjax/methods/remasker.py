"""ReMasker (Du et al. 2024): impute a table by masked autoencoding of its observed cells.

Mask = natural missingness OR a random re-mask of observed cells; the encoder sees the
observed, not re-masked cells; the loss is on the re-masked observed cells (optionally
plus a weighted reconstruction of the visible ones, as the reference adds); at inference
every observed cell is shown and the missing ones are predicted.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.config import dataclass_from_config
from mmjax.losses import masked_mean
from mmjax.masking.tables import RemaskerMasks, remasker_masks
from mmjax.methods.protocol import Batch, EvalResult, Params
from mmjax.methods.registry import register_method
from mmjax.models.table_mae import TableMAE


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config (`remasker.num_columns` must be set)."""
    return ml_collections.ConfigDict(
        {
            "method": "remasker",
            "remasker": {
                "num_columns": 0,
                "width": 64,
                "depth": 4,
                "heads": 4,
                "mlp_dim": 128,
                "decoder_width": 64,
                "decoder_depth": 2,
                "decoder_heads": 4,
                "decoder_mlp_dim": 128,
                "remask_ratio": 0.5,
                "visible_loss_weight": 0.0,
            },
        }
    )


@dataclasses.dataclass(frozen=True)
class ReMaskerOptions:
    """Model size and masking of ReMasker.

    `groups` (one entry per column, optional) ties columns that are masked together:
    the one-hot columns of one categorical variable share a group id, so the random
    re-mask hides or shows them all at once (a half-shown one-hot would give the answer).
    """

    num_columns: int = 0
    width: int = 64
    depth: int = 4
    heads: int = 4
    mlp_dim: int = 128
    decoder_width: int = 64
    decoder_depth: int = 2
    decoder_heads: int = 4
    decoder_mlp_dim: int = 128
    remask_ratio: float = 0.5
    visible_loss_weight: float = 0.0
    groups: tuple[int, ...] | None = None
    periodic_features: int = 0
    periodic_scale: float = 0.5

    def __post_init__(self):
        if self.num_columns < 1:
            raise ValueError(f"remasker.num_columns must be >= 1 (cells per row), got {self.num_columns}")
        if not 0.0 < self.remask_ratio < 1.0:
            raise ValueError(f"remasker.remask_ratio must be in (0, 1), got {self.remask_ratio}")
        if self.visible_loss_weight < 0:
            raise ValueError(f"remasker.visible_loss_weight must be >= 0, got {self.visible_loss_weight}")
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


def remasker_loss(pred: jax.Array, target: jax.Array, masks: RemaskerMasks, visible_weight: float = 0.0) -> jax.Array:
    """Mean squared error on the re-masked observed cells (+ `visible_weight` x the visible cells' MSE).

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
        return cls(dataclass_from_config(ReMaskerOptions, config.get("remasker", {}), "remasker"))

    @property
    def model(self) -> TableMAE:
        o = self.options
        return TableMAE(
            o.num_columns,
            o.width,
            o.depth,
            o.heads,
            o.mlp_dim,
            o.decoder_width,
            o.decoder_depth,
            o.decoder_heads,
            o.decoder_mlp_dim,
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

    def predict(self, params: Params, values: jax.Array, hidden: jax.Array) -> jax.Array:
        """`[B, D]` predictions of every cell from the cells not `hidden`."""
        return self.model.apply({"params": params}, values, hidden)

    def loss(self, params: Params, batch: Batch, rng: jax.Array, train: bool = True) -> tuple[jax.Array, dict]:
        """Masked MSE on re-masked observed cells; `rng` draws the re-mask."""
        del train  # no dropout
        values, observed = self._table(batch)
        masks = self.make_masks(rng, observed)
        pred = self.predict(params, values, masks.hidden)
        loss = remasker_loss(pred, values, masks, self.options.visible_loss_weight)
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

    def evaluate(self, config: ml_collections.ConfigDict, params: Params, workdir: str) -> list[EvalResult]:
        """Impute the `tables` data kind's table: RMSE on removed cells, the filled table in `workdir`
        (`mmjax.evaluate.tables`)."""
        from mmjax.evaluate.tables import evaluate_tables

        return evaluate_tables(config, self, params, workdir)


@register_method("remasker")
def build_remasker(config: ml_collections.ConfigDict) -> ReMasker:
    return ReMasker.from_config(config)


__all__ = ["ReMasker", "ReMaskerOptions", "build_remasker", "default_config", "remasker_loss"]
