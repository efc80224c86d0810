"""A ViT encoder as a standalone artifact: params + JSON config, and its feature function."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.export.atomic import atomic_directory
from mmjax.export.plan import CheckpointMismatchError
from mmjax.methods.common import POOLS, pool_tokens
from mmjax.models.config import ViTConfig
from mmjax.models.vit import ViTEncoder, has_cls_token

ENCODER_FORMAT = "mmjax-vit-encoder"


def flatten_params(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Nested params -> `{"a/b/kernel": array}` (numpy float32), sorted by key."""
    flat = {}
    for path, leaf in tree_paths(params):
        flat["/".join(str(p.key) for p in path)] = np.ascontiguousarray(jax.device_get(leaf), dtype=np.float32)
    return dict(sorted(flat.items()))


def unflatten_params(flat: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Inverse of `flatten_params`."""
    params: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split("/")
        node = params
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return params


def encoder_features(config: ViTConfig, params: Mapping[str, Any], images: jax.Array, pool: str = "cls") -> jax.Array:
    """Features of whole images from `ViTEncoder` params (with or without a `cls_token`).

    Args:
      images: `[B, H, W, C]`.
      pool: `cls` -> `[B, D]`; `mean` -> `[B, D]` mean of patch tokens; `tokens` -> `[B, 1 + N, D]`.
        Without a cls token (I-JEPA) the mean of the patch tokens stands in for it (`pool_tokens`).
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    cls_token = has_cls_token(params)
    tokens, _ = ViTEncoder(config, cls_token=cls_token).apply({"params": params}, images)
    return pool_tokens(tokens, pool, cls_token)


def config_to_dict(config: ViTConfig) -> dict[str, Any]:
    """A `ViTConfig` as JSON-ready values (pairs as lists); `ViTConfig(**d)` rebuilds it."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def save_encoder(config: ViTConfig, params: Mapping[str, Any], out: str | os.PathLike, force: bool = False) -> str:
    """Write `out/model.safetensors` (keys like `blocks/block_0/attn/query/kernel`) and `out/config.json`.

    Written atomically (see `atomic_directory`). Returns `out`.
    """
    from safetensors.numpy import save_file

    flat = flatten_params(params)
    with atomic_directory(out, force) as tmp:
        save_file(flat, os.path.join(tmp, "model.safetensors"), metadata={"format": ENCODER_FORMAT})
        with open(os.path.join(tmp, "config.json"), "w") as f:
            meta = {"format": ENCODER_FORMAT, "version": 1, "cls_token": has_cls_token(params)}
            json.dump({**meta, "model": config_to_dict(config)}, f, indent=2)
    return os.fspath(out)


def load_encoder(path: str | os.PathLike) -> tuple[ViTConfig, dict[str, Any]]:
    """`(ViTConfig, params)` from a `save_encoder` directory; params are checked against the config."""
    from safetensors.numpy import load_file

    with open(os.path.join(path, "config.json")) as f:
        meta = json.load(f)
    if meta.get("format") != ENCODER_FORMAT:
        raise ValueError(f"{path}/config.json: format must be {ENCODER_FORMAT!r}, got {meta.get('format')!r}")
    config = ViTConfig(**meta["model"])
    flat = load_file(os.path.join(path, "model.safetensors"))
    check_encoder_params(config, flat, meta.get("cls_token", True))
    return config, unflatten_params(flat)


def encoder_param_shapes(config: ViTConfig, cls_token: bool = True) -> dict[str, tuple[int, ...]]:
    """`{"blocks/block_0/attn/query/kernel": shape}` of a `ViTEncoder` built from `config` (no compute)."""
    images = jax.ShapeDtypeStruct((1, *config.image_size, config.channels), jnp.float32)
    encoder = ViTEncoder(config, cls_token=cls_token)
    shapes = nn.meta.unbox(jax.eval_shape(encoder.init, jax.random.key(0), images))["params"]
    return {"/".join(str(p.key) for p in path): tuple(leaf.shape) for path, leaf in tree_paths(shapes)}


def tree_paths(tree: Any) -> list[tuple[Any, Any]]:
    return jax.tree_util.tree_flatten_with_path(tree)[0]


def check_encoder_params(config: ViTConfig, flat: Mapping[str, np.ndarray], cls_token: bool = True) -> None:
    """Raise `CheckpointMismatchError` unless `flat` has exactly the encoder's keys and shapes."""
    shapes = encoder_param_shapes(config, cls_token)
    missing = sorted(set(shapes) - set(flat))
    unexpected = sorted(set(flat) - set(shapes))
    mismatched = sorted(
        f"{k} {tuple(flat[k].shape)} != {s}" for k, s in shapes.items() if k in flat and tuple(flat[k].shape) != s
    )
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(missing, unexpected, mismatched)
