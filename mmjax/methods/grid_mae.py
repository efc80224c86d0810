"""What VideoMAE and Audio-MAE share: an MAE over patch vectors of a token grid.

A subclass says how its input becomes patch vectors (`patches`), the grid and how a
mask is drawn (`make_mask`). Its evaluation (the `kind_probe` protocol of
`mmjax.evaluate.protocols`) probes `features` on the data kind's evaluation batches.
With `counts_steps`, params are `{"model": ..., "steps_seen": float32 []}` and the
trainer's `after_step` hook counts updates (for masks that follow a curriculum).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from mmjax.losses import masked_mse, normalize_patches
from mmjax.masking.mask import Mask
from mmjax.methods.common import pool_tokens
from mmjax.methods.protocol import Batch, Params
from mmjax.models.grid_mae import GridDecoderConfig, GridEncoderConfig, GridMAEModel


@dataclasses.dataclass(frozen=True)
class GridMAE(abc.ABC):
    """Base of the grid methods: `init`, `loss`, `features` and the optional trainer hooks.

    Params are the `GridMAEModel` pytree (or `{"model", "steps_seen"}` with `counts_steps`).
    A modality subclasses it and implements the five abstract members below; a subclass
    that misses one cannot be instantiated.
    """

    encoder: GridEncoderConfig
    decoder: GridDecoderConfig

    input_key = "inputs"  # the prepared batch entry the method reads
    name = "grid_mae"
    counts_steps = False

    # --- what a modality provides -------------------------------------------------------
    @property
    @abc.abstractmethod
    def grid(self) -> tuple[int, ...]:
        """The token grid, e.g. `(T', H', W')` for video or `(F', T')` for spectrograms."""

    @property
    @abc.abstractmethod
    def patch_dim(self) -> int:
        """Values per patch vector: the decoder's output width."""

    @abc.abstractmethod
    def patches(self, inputs: jax.Array) -> jax.Array:
        """Model input -> patch vectors `[B, N, patch_dim]` in grid order."""

    @abc.abstractmethod
    def make_mask(self, rng: jax.Array, batch_size: int, step: jax.Array) -> Mask:
        """A fixed-count mask (`ids_keep`, `ids_restore`) over the grid's N tokens."""

    @property
    def norm_pix_loss(self) -> bool:
        """Per-patch normalized targets: the subclass's options (`videomae.norm_pix_loss`, ...)."""
        return self.options.norm_pix_loss

    def targets(self, patches: jax.Array) -> jax.Array:
        """What the decoder must predict, from the input patch vectors `[B, N, P]` -> float32 `[B, N, P]`.

        MAE's: the patches, each normalized as a whole with `norm_pix_loss`; a modality may override it.
        """
        return normalize_patches(patches) if self.norm_pix_loss else patches.astype(jnp.float32)

    # --- the method protocol -----------------------------------------------------------
    @property
    def model(self) -> GridMAEModel:
        return GridMAEModel(self.encoder, self.decoder, tuple(self.grid), self.patch_dim)

    def _inputs(self, batch: Batch) -> jax.Array:
        if self.input_key not in batch:
            raise KeyError(f"{self.name} batches need a {self.input_key!r} entry; got keys {sorted(batch)}")
        return batch[self.input_key]

    def _split(self, params: Params) -> tuple[Params, jax.Array]:
        if self.counts_steps:
            return params["model"], params["steps_seen"]
        return params, jnp.zeros((), jnp.float32)

    def _join(self, model_params: Params, steps_seen: Any) -> Params:
        return {"model": model_params, "steps_seen": steps_seen} if self.counts_steps else model_params

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        patches = self.patches(self._inputs(batch))
        mask = self.make_mask(jax.random.key(0), patches.shape[0], jnp.zeros(()))
        model_params = nn.meta.unbox(self.model.init(rng, patches, mask)["params"])
        return self._join(model_params, jnp.zeros((), jnp.float32))

    def param_axes(self) -> Params:
        patches = jax.ShapeDtypeStruct((1, int(np.prod(self.grid)), self.patch_dim), jnp.float32)
        mask = jax.eval_shape(lambda: self.make_mask(jax.random.key(0), 1, jnp.zeros(())))
        shapes = jax.eval_shape(self.model.init, jax.random.key(0), patches, mask)
        return self._join(nn.get_partition_spec(shapes)["params"], P())

    def trainable(self, params: Params) -> Any:
        flags = jax.tree.map(lambda _: True, params)
        return {**flags, "steps_seen": False} if self.counts_steps else flags

    def after_step(self, params: Params, state_inputs: Any, step: jax.Array) -> Params:
        del state_inputs, step
        return {**params, "steps_seen": params["steps_seen"] + 1.0} if self.counts_steps else params

    def predict(self, params: Params, batch: Batch, rng: jax.Array) -> tuple[jax.Array, jax.Array, Mask]:
        """(predictions `[B, N, P]`, input patch vectors `[B, N, P]` (see `targets`), mask)."""
        model_params, steps_seen = self._split(params)
        patches = self.patches(self._inputs(batch))
        mask = self.make_mask(rng, patches.shape[0], steps_seen)
        return self.model.apply({"params": model_params}, patches, mask), patches, mask

    def loss(
        self, params: Params, batch: Batch, rng: jax.Array, train: bool = True
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """MSE on hidden patches against `targets`."""
        del train  # no dropout
        pred, patches, mask = self.predict(params, batch, rng)
        loss = masked_mse(pred, self.targets(patches), mask.mask)
        return loss, {"loss": loss, "mask_ratio": jnp.mean(mask.mask.astype(jnp.float32))}

    def features(self, params: Params, inputs: jax.Array, pool: str = "mean") -> jax.Array:
        """Encoder features of whole (unmasked) inputs.

        Args:
          inputs: the prepared model input (`[B, T, H, W, C]` video, `[B, frames, mels]` spectrogram).
          pool: `mean` -> `[B, D]` mean of the patch tokens; `cls` -> `[B, D]` (needs `model.cls_token`);
            `tokens` -> `[B, (1 +) N, D]`, the cls row first if there is one.
        """
        model_params, _ = self._split(params)
        tokens = self.model.apply({"params": model_params}, self.patches(inputs), method=GridMAEModel.encode)
        if self.encoder.cls_token:
            return pool_tokens(tokens, pool)
        if pool == "cls":
            raise ValueError("features(pool='cls') needs model.cls_token=True; this encoder has no cls token")
        return jnp.mean(tokens, axis=1) if pool == "mean" else pool_tokens(tokens, pool)
