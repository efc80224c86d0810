"""TimesBERT (Zhang et al. 2025): BERT-style masked patch modeling of multivariate series, with functional tokens.

Each window `[B, L, V]` becomes one sequence: a [DOM] token, then each variate's patches followed
by its [VAR] token (`mmjax.models.timesbert`). Unlike channel-independent PatchTST, every variate
attends to every other. Three objectives, summed:

- masked patch modeling: a fraction of the patches, drawn over all variates and times (`mask.kind`
  `random` by default; `variate_patch` with `shared=True` hides the same times in every variate),
  is replaced by the [MASK] embedding and regressed (MSE in RevIN-normalized units);
- variate discrimination: each variate is, with probability `timesbert.swap_ratio`, replaced by a
  variate of another sample of the batch; its [VAR] token predicts whether it was (binary
  cross-entropy, weight `timesbert.variate_weight`; only with `data.variates > 1`);
- domain classification: the [DOM] token predicts which of `data.sources` the window came from
  (cross-entropy, weight `timesbert.domain_weight`; only with two sources or more).

Simplifications against the paper (which pre-trains a 12-layer, 768-wide encoder on 260 billion
points with 512-token packed contexts): a small encoder; windows of one fixed shape (no packing of
several samples into a context); donors of swapped variates come from the same batch; RevIN per
variate before patching; the domain labels are the bundled source sets (`domain` of the `series`
kind). The defaults (mask ratio 0.25, swap ratio 0.25, unit loss weights) are this library's choices:
the paper's text was not at hand to check them.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from mmjax.config import ConfigError, dataclass_from_config, knob, section_config
from mmjax.losses import masked_mse
from mmjax.masking.registry import MASKS, Layout, draw_mask, mask_section, resolve_mask
from mmjax.methods.protocol import Batch, Params
from mmjax.methods.registry import register_method
from mmjax.models.config import AttentionOption, transformer_config
from mmjax.models.timesbert import TimesBERTModel
from mmjax.ops.series import denormalize_series, instance_stats, normalize_series, patch_series, unpatch_series
from mmjax.parts import Chosen

POOLS = ("mean", "dom", "var", "tokens")
LAYOUT = "series"
PAPER_MASK = "random"


@dataclasses.dataclass(frozen=True)
class TimesBERTOptions:
    """`timesbert`: patching, masking and the functional-token objectives."""

    patch_len: int = knob(8, "time steps per patch; data.window must be a multiple", low=1)
    mask_ratio: float = knob(0.25, "fraction of all patches hidden", low=0, high=1, low_open=True, high_open=True)
    max_variates: int = knob(16, "most variates a window may have (size of the position table)", low=1)
    swap_ratio: float = knob(0.25, "chance that a variate is swapped for another sample's", low=0, high=1)
    variate_weight: float = knob(1.0, "weight of the [VAR] swapped-variate loss (0 = off)", low=0)
    domain_weight: float = knob(1.0, "weight of the [DOM] source-set loss (0 = off)", low=0)


@dataclasses.dataclass(frozen=True)
class ModelOptions(AttentionOption):
    """`model`: the transformer over all variates' tokens (far smaller than the paper's)."""

    width: int = knob(128, "token width", low=1)
    depth: int = knob(3, "transformer blocks", low=0)
    heads: int = knob(16, "attention heads", low=1)
    mlp_dim: int = knob(256, "hidden size of the MLPs", low=1)


def default_config() -> ml_collections.ConfigDict:
    """The method's fields (a small TimesBERT), from the declarations."""
    return ml_collections.ConfigDict(
        {
            "method": "timesbert",
            "model": section_config(ModelOptions),
            "timesbert": section_config(TimesBERTOptions),
            "mask": mask_section(LAYOUT, PAPER_MASK),
        }
    )


def swap_variates(key: jax.Array, series: jax.Array, ratio: float) -> tuple[jax.Array, jax.Array]:
    """Replace each variate, with probability `ratio`, by a random variate of another sample of the batch.

    Args:
      key: PRNG key.
      series: `[B, L, V]`, `B >= 2`.
      ratio: chance per (sample, variate) of a swap.

    Returns:
      `(series, swapped)`: `[B, L, V]` with the swapped-in variates, bool `[B, V]` True where swapped.
    """
    batch, _, variates = series.shape
    if batch < 2:
        raise ValueError(f"swap_variates needs a batch of at least 2 samples (donors); got batch size {batch}")
    k_swap, k_sample, k_variate = jax.random.split(key, 3)
    swapped = jax.random.uniform(k_swap, (batch, variates)) < ratio
    shift = jax.random.randint(k_sample, (batch, variates), 1, batch)  # never the sample itself
    donor = (jnp.arange(batch)[:, None] + shift) % batch
    donor_variate = jax.random.randint(k_variate, (batch, variates), 0, variates)
    donors = jnp.transpose(series, (0, 2, 1))[donor, donor_variate]  # [B, V, L]
    return jnp.where(swapped[:, None, :], jnp.transpose(donors, (0, 2, 1)), series), swapped


@dataclasses.dataclass(frozen=True)
class TimesBERT:
    """The TimesBERT method over batches `{"series": float32 [B, L, V], "domain": int [B]}`.

    `variates`: V of the training data (the [VAR] objective needs V > 1); `num_domains`: classes of
    the [DOM] objective (0 = off). `mask_part` None = `random`.
    """

    input_key = "series"  # the prepared batch entry `features` reads (export)

    window: int
    variates: int
    num_domains: int
    options: TimesBERTOptions
    model_options: ModelOptions
    mask_part: Chosen | None = None

    def __post_init__(self):
        if self.mask_part is None:
            object.__setattr__(self, "mask_part", MASKS.choose(PAPER_MASK))

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> TimesBERT:
        options = dataclass_from_config(TimesBERTOptions, config.timesbert, "timesbert")
        window, variates = int(config.data.window), int(config.data.variates)
        if window % options.patch_len:
            raise ConfigError(f"data.window={window} must be a multiple of timesbert.patch_len={options.patch_len}")
        if variates > options.max_variates:
            raise ConfigError(
                f"data.variates={variates}: expected at most timesbert.max_variates={options.max_variates}"
            )
        sources = tuple(config.data.sources)
        num_domains = len(sources) if options.domain_weight > 0 and len(sources) > 1 else 0
        model_options = dataclass_from_config(ModelOptions, config.model, "model")
        mask = resolve_mask(config.get("mask"), LAYOUT, PAPER_MASK)
        return cls(window, variates, num_domains, options, model_options, mask)

    @property
    def patch_len(self) -> int:
        return self.options.patch_len

    @property
    def mask_ratio(self) -> float:
        return self.options.mask_ratio

    @property
    def num_patches(self) -> int:
        return self.window // self.patch_len

    @property
    def discriminates_variates(self) -> bool:
        """Whether the [VAR] objective is on: more than one variate, a swap chance and a weight."""
        return self.variates > 1 and self.options.swap_ratio > 0 and self.options.variate_weight > 0

    @property
    def model(self) -> TimesBERTModel:
        m = self.model_options
        return TimesBERTModel(
            num_patches=self.num_patches,
            patch_len=self.patch_len,
            max_variates=self.options.max_variates,
            width=m.width,
            transformer=transformer_config(m),
            num_domains=self.num_domains,
            variate_head=self.discriminates_variates,
        )

    def _series(self, batch: Batch) -> jax.Array:
        if "series" not in batch:
            raise KeyError(f"TimesBERT batches need a 'series' entry [B, L, V]; got keys {sorted(batch)}")
        return batch["series"]

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        patches = patch_series(self._series(batch), self.patch_len)
        return nn.meta.unbox(self.model.init(rng, patches)["params"])

    def param_axes(self) -> Params:
        patches = jax.ShapeDtypeStruct((1, 1, self.num_patches, self.patch_len), jnp.float32)
        shapes = jax.eval_shape(self.model.init, jax.random.key(0), patches)
        return nn.get_partition_spec(shapes)["params"]

    def make_mask(self, rng: jax.Array, batch_size: int, num_variates: int) -> jax.Array:
        """bool `[B, V * P]` (variate-major), True = hidden; by default drawn over all variates and times."""
        layout = Layout(LAYOUT, (num_variates, self.num_patches))
        return draw_mask(self.mask_part, rng, batch_size, layout, self.mask_ratio).mask

    def loss(self, params: Params, batch: Batch, rng: jax.Array, train: bool = True) -> tuple[jax.Array, dict]:
        """Masked-patch MSE + `variate_weight` x [VAR] BCE + `domain_weight` x [DOM] cross-entropy."""
        del train  # no dropout
        series = self._series(batch)
        batch_size, _, variates = series.shape
        mask_key, swap_key = jax.random.split(rng)
        metrics = {}
        if self.discriminates_variates:
            series, swapped = swap_variates(swap_key, series, self.options.swap_ratio)
        mean, std = instance_stats(series)
        patches = patch_series(normalize_series(series, mean, std), self.patch_len)
        hidden = self.make_mask(mask_key, batch_size, variates)
        out = self.model.apply({"params": params}, patches, hidden)
        flat = (batch_size, variates * self.num_patches, self.patch_len)
        mpm = masked_mse(out["patches"].reshape(flat), patches.reshape(flat), hidden)
        loss = mpm
        metrics.update(mpm_loss=mpm, mask_ratio=jnp.mean(hidden.astype(jnp.float32)))
        if self.discriminates_variates:
            var_loss = jnp.mean(optax.sigmoid_binary_cross_entropy(out["variate"], swapped.astype(jnp.float32)))
            loss = loss + self.options.variate_weight * var_loss
            accuracy = jnp.mean(((out["variate"] > 0) == swapped).astype(jnp.float32))
            metrics.update(variate_loss=var_loss, variate_accuracy=accuracy)
        if self.num_domains:
            if "domain" not in batch:
                raise KeyError(f"timesbert.domain_weight > 0 needs a 'domain' entry [B]; got keys {sorted(batch)}")
            labels = batch["domain"].astype(jnp.int32)
            dom_loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out["domain"], labels))
            loss = loss + self.options.domain_weight * dom_loss
            accuracy = jnp.mean((jnp.argmax(out["domain"], -1) == labels).astype(jnp.float32))
            metrics.update(domain_loss=dom_loss, domain_accuracy=accuracy)
        return loss, {"loss": loss, **metrics}

    def reconstruct(self, params: Params, series: jax.Array, hidden: jax.Array) -> jax.Array:
        """Fill hidden patches: `[B, L, V]` and bool `[B, V * P]` -> `[B, L, V]` predictions in series units.

        RevIN statistics come from the visible time steps only, so hidden values never leak.
        """
        batch_size, _, variates = series.shape
        observed = jnp.repeat(hidden.reshape(batch_size, variates, self.num_patches), self.patch_len, axis=2)
        observed = ~jnp.transpose(observed, (0, 2, 1))
        mean, std = instance_stats(series, observed)
        patches = patch_series(jnp.where(observed, normalize_series(series, mean, std), 0.0), self.patch_len)
        pred = self.model.apply({"params": params}, patches, hidden)["patches"]
        return denormalize_series(unpatch_series(pred), mean, std)

    def features(self, params: Params, inputs: jax.Array, pool: str = "mean") -> jax.Array:
        """Encoder features of whole windows `[B, L, V]` (RevIN-normalized inside).

        `pool="mean"`: each variate's mean patch token, variates concatenated -> `[B, V * D]`;
        `"dom"`: the [DOM] token `[B, D]`; `"var"`: the [VAR] tokens `[B, V * D]`;
        `"tokens"`: the patch tokens `[B, V, P, D]`.
        """
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        mean, std = instance_stats(inputs)
        patches = patch_series(normalize_series(inputs, mean, std), self.patch_len)
        encoded = self.model.apply({"params": params}, patches, method=TimesBERTModel.encode)
        batch_size = inputs.shape[0]
        if pool == "tokens":
            return encoded["patches"]
        if pool == "dom":
            return encoded["dom"]
        if pool == "var":
            return encoded["var"].reshape(batch_size, -1)
        return jnp.mean(encoded["patches"], axis=2).reshape(batch_size, -1)


@register_method("timesbert", protocols=("series",))
def build_timesbert(config: ml_collections.ConfigDict) -> TimesBERT:
    return TimesBERT.from_config(config)


__all__ = ["TimesBERT", "build_timesbert", "default_config", "swap_variates"]
