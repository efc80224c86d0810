"""BEiT (Bao et al. 2022; BEiT v2, Peng et al. 2022): hide block-wise groups of patches, encode
every patch with the hidden ones as a mask token, and predict a frozen tokenizer's code ids at
the hidden patches with cross entropy.

The tokenizer is a finished `vq` run (`beit.tokenizer_workdir`). Its parameters are copied into
this method's params under `tokenizer` once, on a fresh run (the trainer loads the run this method
declares in `frozen_runs`, `load_frozen` copies it), and never train, so a BEiT checkpoint is
self-contained.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from mmjax.config import dataclass_from_config, knob, section_config
from mmjax.losses import masked_mean
from mmjax.masking.blockwise import blockwise_mask
from mmjax.masking.mask import Mask
from mmjax.methods.common import pool_tokens
from mmjax.methods.protocol import Batch, BuiltRun, LoadedRun, Params, RunPart
from mmjax.methods.registry import register_method
from mmjax.models.beit import BEiTModel
from mmjax.models.config import ViTConfig, vit_config_from_section, vit_section
from mmjax.ops.patches import patchify, unpatchify

# BEiT's budget: 75 of 14 x 14 patches, blocks of at least 16 patches.
REFERENCE_PATCHES = 196


@dataclasses.dataclass(frozen=True)
class BEiTOptions:
    """`beit`: the tokenizer run and the block-wise mask (BEiT: 75 of 196 patches hidden in blocks of >= 16)."""

    tokenizer_workdir: str = knob("", "a finished `vq` run whose token grid is this ViT's patch grid")
    tokenizer_step: int | None = knob(None, "its checkpoint step (None: latest)")
    mask_ratio: float = knob(75 / 196, "the block-wise budget, a fraction of the patches")
    min_block: int | None = knob(None, "smallest block area in patches (None: 16 / 196 of the patches)")
    min_aspect: float = knob(0.3, "smallest block aspect ratio, in (0, 1]")

    def __post_init__(self):
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"beit.mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.min_block is not None and self.min_block < 1:
            raise ValueError(f"beit.min_block must be a positive number of patches, got {self.min_block}")
        if not 0.0 < self.min_aspect <= 1.0:
            raise ValueError(f"beit.min_aspect must be in (0, 1], got {self.min_aspect}")


def default_config() -> ml_collections.ConfigDict:
    """The method's fields: BEiT ViT-B/16 and `BEiTOptions`; generated from the declarations."""
    return ml_collections.ConfigDict({"method": "beit", "model": vit_section(), "beit": section_config(BEiTOptions)})


def _data_fields(config: Any) -> dict[str, Any]:
    data = config.get("data") or {}
    return {k: tuple(data[k]) if isinstance(data[k], list | tuple) else data[k] for k in ("mean", "std") if k in data}


def tokenizer_part(options: BEiTOptions) -> RunPart:
    """The tokenizer run `beit.tokenizer_workdir` names (its config builds the tokenizer, its params fill it)."""
    if not options.tokenizer_workdir:
        raise ValueError("beit.tokenizer_workdir is empty: it must name a finished tokenizer run (method 'vq')")
    return RunPart(
        "beit.tokenizer_workdir", options.tokenizer_workdir, options.tokenizer_step, "train a tokenizer there first"
    )


def tokenizer_runs(config: ml_collections.ConfigDict) -> dict[str, RunPart]:
    """What the builder reads: the tokenizer run's config (`register_method(..., reads=)`)."""
    return {"tokenizer": tokenizer_part(dataclass_from_config(BEiTOptions, config.beit, "beit"))}


def tokenizer_method(options: BEiTOptions, config: ml_collections.ConfigDict, run: BuiltRun) -> Any:
    """The tokenizer method of the run `beit.tokenizer_workdir` (`run`), checked against this run."""
    tok_config = ml_collections.ConfigDict(run.config)
    if tok_config.get("method") != "vq":
        raise ValueError(
            f"beit.tokenizer_workdir={options.tokenizer_workdir!r} holds a {tok_config.get('method')!r} run; "
            f"expected a tokenizer (method 'vq')"
        )
    ours, theirs = _data_fields(config), _data_fields(tok_config)
    if ours and theirs and ours != theirs:
        raise ValueError(
            f"data normalization {ours} differs from the tokenizer run's {theirs} "
            f"(beit.tokenizer_workdir={options.tokenizer_workdir!r}); the tokenizer expects its own"
        )
    return run.method


@dataclasses.dataclass(frozen=True)
class BEiT:
    """The BEiT method. Params: `{"model": ..., "tokenizer": <frozen tokenizer params>}`;
    batches are dicts with `image` `[B, H, W, C]`, normalized."""

    model_config: ViTConfig
    options: BEiTOptions
    tokenizer: Any  # a tokenizer method (`mmjax.methods.vq.VQTokenizer`)

    def __post_init__(self):
        cfg, tok = self.model_config, self.tokenizer
        where = f"beit.tokenizer_workdir={self.options.tokenizer_workdir!r}"
        if tuple(tok.token_grid) != cfg.grid:
            raise ValueError(
                f"the tokenizer's token grid {tuple(tok.token_grid)} ({where}) must equal the BEiT patch grid "
                f"{cfg.grid} (model.image_size={cfg.image_size} / model.patch_size={cfg.patch_size})"
            )
        tok_cfg = tok.model_config
        if (tok_cfg.image_size, tok_cfg.channels) != (cfg.image_size, cfg.channels):
            raise ValueError(
                f"the tokenizer reads {tok_cfg.image_size} images with {tok_cfg.channels} channels ({where}); "
                f"model.image_size={cfg.image_size}, model.channels={cfg.channels} must match"
            )

    @classmethod
    def from_config(
        cls,
        config: ml_collections.ConfigDict,
        tokenizer: Any | None = None,
        tokenizer_run: BuiltRun | None = None,
    ) -> BEiT:
        """Build from an experiment config and the tokenizer run (`tokenizer_run`, read and built by
        `mmjax.train.build_method`), or a tokenizer method (`tokenizer`) in its place."""
        options = dataclass_from_config(BEiTOptions, config.beit, "beit")
        model_config = vit_config_from_section(config.model)
        if tokenizer is None:
            part = tokenizer_part(options)
            if tokenizer_run is None:
                raise ValueError(
                    f"BEiT needs the config of its tokenizer run ({part.field}={part.workdir!r}): build it with "
                    f"mmjax.train.build_method, which reads it"
                )
            tokenizer = tokenizer_method(options, config, tokenizer_run)
        return cls(model_config, options, tokenizer)

    @property
    def model(self) -> BEiTModel:
        return BEiTModel(self.model_config, self.tokenizer.vocab_size)

    @property
    def num_masked(self) -> int:
        """The block-wise budget on this grid: `round(mask_ratio * N)`, at least 1."""
        return max(1, round(self.options.mask_ratio * self.model_config.num_patches))

    @property
    def min_block(self) -> int:
        """Smallest block area: `beit.min_block`, or BEiT's 16 of 196 scaled to this grid."""
        if self.options.min_block is not None:
            return min(self.options.min_block, self.num_masked)
        return max(1, min(round(16 * self.model_config.num_patches / REFERENCE_PATCHES), self.num_masked))

    def _images(self, batch: Batch) -> jax.Array:
        if "image" not in batch:
            raise KeyError(f"BEiT batches need an 'image' entry [B, H, W, C]; got keys {sorted(batch)}")
        return batch["image"]

    def make_mask(self, rng: jax.Array, batch_size: int) -> Mask:
        """Block-wise mask `[B, N]` with a budget of `num_masked` patches (the count can fall short)."""
        return blockwise_mask(
            rng,
            batch_size,
            self.model_config.grid,
            self.num_masked,
            min_block=self.min_block,
            min_aspect=self.options.min_aspect,
        )

    # --- Parameters -------------------------------------------------------------------

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        """Fresh BEiT params; the `tokenizer` entry is random until `load_frozen` fills it."""
        images = self._images(batch)
        model_key, tok_key = jax.random.split(rng)
        hidden = jnp.zeros((images.shape[0], self.model_config.num_patches), bool)
        model = nn.meta.unbox(self.model.init(model_key, images, hidden)["params"])
        return {"model": model, "tokenizer": self.tokenizer.init(tok_key, batch)}

    def param_axes(self) -> Params:
        cfg = self.model_config
        images = jax.ShapeDtypeStruct((1, *cfg.image_size, cfg.channels), jnp.float32)
        hidden = jax.ShapeDtypeStruct((1, cfg.num_patches), jnp.bool_)
        shapes = jax.eval_shape(self.model.init, jax.random.key(0), images, hidden)
        return {"model": nn.get_partition_spec(shapes)["params"], "tokenizer": self.tokenizer.param_axes()}

    def trainable(self, params: Params) -> Params:
        """Everything under `model` trains; the tokenizer is frozen."""
        return {
            "model": jax.tree.map(lambda _: True, params["model"]),
            "tokenizer": jax.tree.map(lambda _: False, params["tokenizer"]),
        }

    def frozen_runs(self) -> dict[str, RunPart]:
        """The tokenizer run, whose parameters `load_frozen` copies (loaded by the trainer)."""
        return {"tokenizer": tokenizer_part(self.options)}

    def load_frozen(self, params: Params, runs: dict[str, LoadedRun]) -> Params:
        """Copy the trained tokenizer of `beit.tokenizer_workdir` (`runs["tokenizer"]`) into `params["tokenizer"]`."""
        tok_params = runs["tokenizer"].params
        expected = jax.tree.map(lambda x: (x.shape, x.dtype), params["tokenizer"])
        loaded = jax.tree.map(lambda x: (x.shape, x.dtype), tok_params)
        if jax.tree.structure(expected) != jax.tree.structure(loaded) or expected != loaded:
            raise ValueError(
                f"the checkpoint in beit.tokenizer_workdir={self.options.tokenizer_workdir!r} does not match "
                f"the tokenizer its config.json describes"
            )
        return {**params, "tokenizer": tok_params}

    # --- Training ---------------------------------------------------------------------

    def targets(self, params: Params, images: jax.Array) -> jax.Array:
        """The frozen tokenizer's code ids, int32 `[B, N]` (row-major over the patch grid)."""
        codes = self.tokenizer.tokenize(jax.lax.stop_gradient(params["tokenizer"]), images)
        return codes.reshape(images.shape[0], -1)

    def predict(self, params: Params, batch: Batch, rng: jax.Array) -> tuple[jax.Array, Mask]:
        """Code logits `[B, N, V]` for every patch, and the block-wise mask used."""
        images = self._images(batch)
        mask = self.make_mask(rng, images.shape[0])
        return self.model.apply({"params": params["model"]}, images, mask.mask), mask

    def loss(
        self, params: Params, batch: Batch, rng: jax.Array, train: bool = True
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Cross entropy against the tokenizer's ids, averaged over hidden patches only."""
        del train
        logits, mask = self.predict(params, batch, rng)
        targets = self.targets(params, self._images(batch))
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
        loss = masked_mean(ce, mask.mask)
        correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
        return loss, {
            "loss": loss,
            "accuracy": masked_mean(correct, mask.mask),
            "mask_ratio": jnp.mean(mask.mask.astype(jnp.float32)),
        }

    # --- Evaluation -------------------------------------------------------------------

    def reconstruct(self, params: Params, batch: Batch, rng: jax.Array) -> dict[str, jax.Array]:
        """Images `[B, H, W, C]` through the tokenizer's decoder: `prediction` (predicted ids
        everywhere), `pasted` (true ids at visible patches), `masked` (hidden patches zeroed); `mask` `[B, N]`."""
        images = self._images(batch)
        logits, mask = self.predict(params, batch, rng)
        rows, cols = self.model_config.grid
        predicted = jnp.argmax(logits, -1).astype(jnp.int32)
        pasted = jnp.where(mask.mask, predicted, self.targets(params, images))
        tok = params["tokenizer"]
        patches = patchify(images, self.model_config.patch_size)
        masked = unpatchify(jnp.where(mask.mask[..., None], 0.0, patches), (rows, cols), self.model_config.patch_size)
        return {
            "prediction": self.tokenizer.detokenize(tok, predicted.reshape(-1, rows, cols)),
            "pasted": self.tokenizer.detokenize(tok, pasted.reshape(-1, rows, cols)),
            "masked": masked,
            "mask": mask.mask,
        }

    def encoder(self, params: Params) -> tuple[ViTConfig, Params]:
        """The `ViTEncoder` that `features` runs, for export (the tokenizer and the code head are left out)."""
        return self.model_config, params["model"]["encoder"]

    def features(self, params: Params, images: jax.Array, pool: str = "cls") -> jax.Array:
        """Unmasked encoder features: `cls` / `mean` `[B, D]` or `tokens` `[B, 1 + N, D]`."""
        return pool_tokens(self.model.apply({"params": params["model"]}, images, method=BEiTModel.encode), pool)


@register_method("beit", reads=tokenizer_runs, protocols=("linear_probe", "reconstruction_figure"))
def build_beit(config: ml_collections.ConfigDict, runs: dict[str, BuiltRun]) -> BEiT:
    return BEiT.from_config(config, tokenizer_run=runs["tokenizer"])
