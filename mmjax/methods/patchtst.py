"""PatchTST / TimesBERT-style masked patch reconstruction for (multivariate) time series.

Each window `[B, L, V]` is normalized per example and variate (RevIN), cut into
per-variate patches `[B, V, P, p]` (`P = L / p`; with `patchtst.patch_stride` set, HF PatchTST's
strided patchifier), a fraction of each variate's patches is hidden
(`mask.kind`: `variate_patch`, the paper's, or any generator that fits a series layout
`(V, P)`, e.g. `random` over all variate patches), and a channel-independent transformer
reconstructs them; the loss is the MSE on hidden patches in normalized units.
`mmjax.export.hf_patchtst` converts HF `PatchTSTForPretraining` weights both ways.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from mmjax.config import dataclass_from_config, knob, section_config
from mmjax.losses import masked_mse
from mmjax.masking.registry import MASKS, Layout, draw_mask, mask_section, resolve_mask
from mmjax.methods.protocol import Batch, Params
from mmjax.methods.registry import register_method
from mmjax.models.config import AttentionOption, transformer_config
from mmjax.models.patchtst import POSITIONS, PatchTSTModel
from mmjax.ops.series import (
    denormalize_series,
    instance_stats,
    normalize_series,
    patch_series,
    series_patch_count,
    unpatch_series,
)
from mmjax.parts import Chosen

POOLS = ("mean", "tokens")
LAYOUT = "series"
PAPER_MASK = "variate_patch"


@dataclasses.dataclass(frozen=True)
class PatchTSTOptions:
    """`patchtst`: patching and masking (PatchTST's self-supervised defaults)."""

    patch_len: int = knob(8, "time steps per patch; data.window must be a multiple unless patch_stride is set", low=1)
    patch_stride: int | None = knob(
        None,
        "None: non-overlapping patches; a number s: HF PatchTST's patchifier, (window - patch_len) // s + 1 "
        "patches of the last steps (the first (window - patch_len) % s are dropped), overlapping when s < patch_len",
        low=1,
    )
    mask_ratio: float = knob(
        0.4, "fraction of each variate's patches hidden", low=0, high=1, low_open=True, high_open=True
    )


@dataclasses.dataclass(frozen=True)
class ModelOptions(AttentionOption):
    """`model`: the channel-independent transformer (smaller than the paper's)."""

    width: int = knob(128, "token width", low=1)
    depth: int = knob(3, "transformer blocks", low=0)
    heads: int = knob(16, "attention heads", low=1)
    mlp_dim: int = knob(256, "hidden size of the MLPs", low=1)
    layer_norm_eps: float = knob(1e-6, "epsilon of every LayerNorm (HF PatchTST: norm_eps, 1e-5)", low=0)
    positions: str = knob(
        "learned", "patch positions: learned table, or HF PatchTST's fixed normalized sincos", choices=POSITIONS
    )
    final_norm: bool = knob(True, "LayerNorm after the last block (HF PatchTST has none)")


def default_config() -> ml_collections.ConfigDict:
    """The method's fields (PatchTST self-supervised defaults, a smaller model), from the declarations."""
    return ml_collections.ConfigDict(
        {
            "method": "patchtst",
            "model": section_config(ModelOptions),
            "patchtst": section_config(PatchTSTOptions),
            "mask": mask_section(LAYOUT, PAPER_MASK),
        }
    )


@dataclasses.dataclass(frozen=True)
class PatchTST:
    """The PatchTST method over batches `{"series": float32 [B, L, V]}`; `mask_part` None = `variate_patch`."""

    input_key = "series"  # the prepared batch entry `features` reads (export)

    window: int
    options: PatchTSTOptions
    model_options: ModelOptions
    mask_part: Chosen | None = None

    def __post_init__(self):
        if self.mask_part is None:
            object.__setattr__(self, "mask_part", MASKS.choose(PAPER_MASK))

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> PatchTST:
        options = dataclass_from_config(PatchTSTOptions, config.patchtst, "patchtst")
        window = int(config.data.window)
        if options.patch_stride is None and window % options.patch_len:
            raise ValueError(f"data.window={window} must be a multiple of patchtst.patch_len={options.patch_len}")
        if window < options.patch_len:
            raise ValueError(f"data.window={window} must be at least patchtst.patch_len={options.patch_len}")
        model_options = dataclass_from_config(ModelOptions, config.model, "model")
        return cls(window, options, model_options, resolve_mask(config.get("mask"), LAYOUT, PAPER_MASK))

    @property
    def patch_len(self) -> int:
        return self.options.patch_len

    @property
    def mask_ratio(self) -> float:
        return self.options.mask_ratio

    @property
    def patch_stride(self) -> int | None:
        return self.options.patch_stride

    @property
    def num_patches(self) -> int:
        return series_patch_count(self.window, self.patch_len, self.patch_stride)

    @property
    def patches_tile_window(self) -> bool:
        """Whether the patches cover every time step exactly once (what `reconstruct` needs)."""
        return self.num_patches * self.patch_len == self.window and self.patch_stride in (None, self.patch_len)

    @property
    def model(self) -> PatchTSTModel:
        m = self.model_options
        return PatchTSTModel(
            num_patches=self.num_patches,
            patch_len=self.patch_len,
            width=m.width,
            transformer=transformer_config(m),
            positions=m.positions,
            final_norm=m.final_norm,
        )

    def _patches(self, series: jax.Array) -> jax.Array:
        return patch_series(series, self.patch_len, self.patch_stride)

    def _series(self, batch: Batch) -> jax.Array:
        if "series" not in batch:
            raise KeyError(f"PatchTST batches need a 'series' entry [B, L, V]; got keys {sorted(batch)}")
        return batch["series"]

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        patches = self._patches(self._series(batch))
        return nn.meta.unbox(self.model.init(rng, patches)["params"])

    def param_axes(self) -> Params:
        patches = jax.ShapeDtypeStruct((1, 1, self.num_patches, self.patch_len), jnp.float32)
        shapes = jax.eval_shape(self.model.init, jax.random.key(0), patches)
        return nn.get_partition_spec(shapes)["params"]

    def make_mask(self, rng: jax.Array, batch_size: int, num_variates: int) -> jax.Array:
        """bool `[B, V * P]` (variate-major), True = hidden (the paper's kind: each variate its own patches)."""
        layout = Layout(LAYOUT, (num_variates, self.num_patches))
        return draw_mask(self.mask_part, rng, batch_size, layout, self.mask_ratio).mask

    def masked_loss(self, params: Params, series: jax.Array, hidden: jax.Array) -> tuple[jax.Array, jax.Array]:
        """MSE on the given hidden patches of the RevIN-normalized series (HF PatchTST's pretraining loss).

        Args:
          series: `[B, L, V]`.
          hidden: bool `[B, V * P]` (variate-major), True = hidden.

        Returns:
          `(loss, pred)`: the float32 scalar and the predicted patches `[B, V, P, p]` (normalized units).
        """
        batch_size, _, variates = series.shape
        mean, std = instance_stats(series)
        patches = self._patches(normalize_series(series, mean, std))
        pred = self.model.apply({"params": params}, patches, hidden)
        flat = (batch_size, variates * self.num_patches, self.patch_len)
        return masked_mse(pred.reshape(flat), patches.reshape(flat), hidden), pred

    def loss(self, params: Params, batch: Batch, rng: jax.Array, train: bool = True) -> tuple[jax.Array, dict]:
        """MSE on hidden patches of the RevIN-normalized series."""
        del train  # no dropout
        series = self._series(batch)
        hidden = self.make_mask(rng, series.shape[0], series.shape[2])
        loss, _ = self.masked_loss(params, series, hidden)
        return loss, {"loss": loss, "mask_ratio": jnp.mean(hidden.astype(jnp.float32))}

    def reconstruct(self, params: Params, series: jax.Array, hidden: jax.Array) -> jax.Array:
        """Fill hidden patches: `[B, L, V]` and bool `[B, V * P]` -> `[B, L, V]` predictions in series units.

        RevIN statistics come from the visible time steps only, so hidden values never leak.
        Needs patches that tile the window (no `patchtst.patch_stride` other than `patch_len`).
        """
        if not self.patches_tile_window:
            raise ValueError(
                f"reconstruct needs patches that tile data.window={self.window}: patchtst.patch_stride="
                f"{self.patch_stride}, expected None or patch_len={self.patch_len} with a window multiple of it"
            )
        batch_size, length, variates = series.shape
        observed = jnp.repeat(hidden.reshape(batch_size, variates, self.num_patches), self.patch_len, axis=2)
        observed = ~jnp.transpose(observed, (0, 2, 1))
        mean, std = instance_stats(series, observed)
        patches = self._patches(jnp.where(observed, normalize_series(series, mean, std), 0.0))
        pred = self.model.apply({"params": params}, patches, hidden)
        return denormalize_series(unpatch_series(pred), mean, std)

    def features(self, params: Params, inputs: jax.Array, pool: str = "mean") -> jax.Array:
        """Encoder features of whole windows `[B, L, V]` (RevIN-normalized inside).

        `pool="mean"`: each variate's mean patch token, variates concatenated -> `[B, V * D]`;
        `pool="tokens"`: `[B, V, P, D]`.
        """
        mean, std = instance_stats(inputs)
        patches = self._patches(normalize_series(inputs, mean, std))
        tokens = self.model.apply({"params": params}, patches, method=PatchTSTModel.encode)
        if pool == "tokens":
            return tokens
        if pool == "mean":
            return jnp.mean(tokens, axis=2).reshape(tokens.shape[0], -1)
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")


@register_method("patchtst", protocols=("series",))
def build_patchtst(config: ml_collections.ConfigDict) -> PatchTST:
    return PatchTST.from_config(config)


__all__ = ["PatchTST", "build_patchtst", "default_config"]
