"""Pieces shared by the image methods: their parts chosen from a config, reconstruction images, feature pooling."""

from __future__ import annotations

import inspect
from typing import Any

import jax
import jax.extend.core as jax_core
import jax.numpy as jnp
import ml_collections

from mmjax.config import ConfigError
from mmjax.losses import LOSSES
from mmjax.masking.registry import check_scores, needed_scores, resolve_mask
from mmjax.models.config import ViTConfig
from mmjax.ops.patches import patchify, unpatchify
from mmjax.parts import Chosen
from mmjax.targets import TARGETS, target_dim

POOLS = ("cls", "mean", "tokens")
# The score maps (`mmjax.masking.registry.SCORES`) an image method computes from its input for guided
# masks: name -> `(images [B, H, W, C], patch_size) -> [B, N]`.
IMAGE_SCORE_MAPS = {
    "pixel_std": lambda images, patch_size: jnp.std(patchify(images, patch_size).astype(jnp.float32), axis=-1),
}
IMAGE_SCORES = tuple(IMAGE_SCORE_MAPS)


def image_parts(
    config: ml_collections.ConfigDict,
    layout: str,
    paper: tuple[str, str, str],
    owned_masks: dict[str, Any] | None = None,
    supplied: tuple[str, ...] = IMAGE_SCORES,
) -> tuple[Chosen, Chosen, Chosen]:
    """The (mask, target, loss) a config's `mask`, `target` and `loss` sections choose, each checked.

    `paper` is the method's (mask, target, loss) kinds, used where a section is absent (an older
    config) or leaves `kind` unset; the loss must fit the chosen target's values. `supplied`:
    the score maps the method gives guided mask kinds.
    """
    mask_kind, target_kind, loss_kind = paper
    target = TARGETS.resolve(config.get("target"), "image", target_kind)
    mask = resolve_mask(config.get("mask"), layout, mask_kind, owned_masks)
    check_scores(mask, supplied, config.get("method", "?"))
    return mask, target, LOSSES.resolve(config.get("loss"), target.part.fact("values"), loss_kind)


def target_width(target: Chosen, model_config: ViTConfig) -> int:
    """The target's width per patch of a ViT config; a target that cannot cut its patches is a `ConfigError`."""
    try:
        return target_dim(target, model_config.patch_size, model_config.channels)
    except ValueError as err:
        raise ConfigError(f"target.{target.name} with model.patch_size={model_config.patch_size}: {err}") from None


def image_scores(
    mask: Chosen, images: jax.Array | None, patch_size: int, given: dict[str, jax.Array] | None = None
) -> dict[str, jax.Array] | None:
    """The score maps `[B, N]` the chosen mask kind reads; None if it reads none.

    Maps in `given` (computed by the method, e.g. `predicted_loss`) are used as they are; the
    `IMAGE_SCORES` are computed from `[B, H, W, C]` `images`.
    """
    names = needed_scores(mask)
    if not names:
        return None
    maps = {name: values for name, values in (given or {}).items() if name in names}
    for name in names:
        if name in maps:
            continue
        if name not in IMAGE_SCORES:
            raise ValueError(f"mask.kind={mask.name!r} reads the {name!r} score map; the caller must pass it")
        if images is None:
            raise ValueError(f"mask.kind={mask.name!r} is drawn from score maps of the images; pass the images")
        maps[name] = IMAGE_SCORE_MAPS[name](images, patch_size)
    return maps


def reconstruction_images(
    pred: jax.Array, images: jax.Array, hidden: jax.Array, config: ViTConfig, *, norm_pix: bool = False
) -> dict[str, jax.Array]:
    """Images for looking at a reconstruction.

    Args:
      pred: `[B, N, P]` predicted patches (in normalized-patch units when `norm_pix`).
      images: `[B, H, W, C]` the true images.
      hidden: bool `[B, N]`, True = hidden.
      norm_pix: undo per-patch normalization with each true patch's mean and std.

    Returns:
      `prediction` (every patch predicted), `pasted` (true visible patches, predicted
      hidden ones), `masked` (hidden patches zeroed), all `[B, H, W, C]`, and `mask` `[B, N]`.
    """
    target = patchify(images, config.patch_size).astype(jnp.float32)
    if norm_pix:
        mean = jnp.mean(target, axis=-1, keepdims=True)
        std = jnp.sqrt(jnp.var(target, axis=-1, keepdims=True, ddof=1) + 1e-6)
        pred = pred * std + mean
    where_hidden = hidden[..., None]

    def image(patches):
        return unpatchify(patches, config.grid, config.patch_size)

    return {
        "prediction": image(pred),
        "pasted": image(jnp.where(where_hidden, pred, target)),
        "masked": image(jnp.where(where_hidden, 0.0, target)),
        "mask": hidden,
    }


def has_image_encoder(method: object) -> bool:
    """Whether `method.encoder(params) -> (ViTConfig, params)` gives a `ViTEncoder` over images (the hook
    export and fine-tuning read)."""
    return callable(getattr(method, "encoder", None))


def input_key(method: object) -> str:
    """The prepared batch entry a method's `features` (and a classifier on them) reads: `method.input_key`,
    `"image"` for the image methods that name none."""
    return getattr(method, "input_key", "image")


def has_feature_function(method: object) -> bool:
    """Whether the method has the probes' `features(params, inputs, pool)` (a generator's `features` of
    codes and labels is another function)."""
    features = getattr(method, "features", None)
    return callable(features) and "pool" in inspect.signature(features).parameters


def read_leaves(fn: Any, flat: dict[str, Any], inputs: jax.ShapeDtypeStruct) -> list[str]:
    """The names of the leaves `fn(list of flat's leaves in order, inputs)` reads to compute its output, from
    its jaxpr (no compute): walking the equations backwards from the outputs, so a part computed and thrown
    away (an MLM head after the features are sown) does not count."""
    specs = [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in flat.values()]
    jaxpr = jax.make_jaxpr(fn)(specs, inputs).jaxpr
    live = {id(v) for v in jaxpr.outvars if not isinstance(v, jax_core.Literal)}
    for eqn in reversed(jaxpr.eqns):
        if any(id(v) in live for v in eqn.outvars):
            live |= {id(v) for v in eqn.invars if not isinstance(v, jax_core.Literal)}
    return [name for name, var in zip(flat, jaxpr.invars, strict=False) if id(var) in live]


def pool_tokens(tokens: jax.Array, pool: str, cls_token: bool = True) -> jax.Array:
    """`[B, 1 + N, D]` encoder output (cls first) -> `cls` / `mean` `[B, D]`, or `tokens` unchanged.

    An encoder without a cls token (I-JEPA) gives `[B, N, D]`: `cls` and `mean` pool the mean of
    the tokens, and `tokens` is `[B, 1 + N, D]` with that mean first (where a cls token would be).
    """
    if not cls_token:
        tokens = jnp.concatenate([jnp.mean(tokens, axis=1, keepdims=True), tokens], axis=1)
        pool = "mean" if pool == "cls" else pool
    if pool == "cls":
        return tokens[:, 0]
    if pool == "mean":
        return jnp.mean(tokens[:, 1:], axis=1)
    if pool == "tokens":
        return tokens
    raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
