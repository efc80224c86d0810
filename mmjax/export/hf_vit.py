"""HF transformers `ViTModel` (or `ViTForImageClassification`'s `vit.`) weights <-> mmjax `ViTEncoder` params.

HF ViT learns its position table, so the encoder gets `posemb="learned"`; HF's layer-norm
eps (default 1e-12, not timm's 1e-6) is carried into the config. Both 4.x
(`encoder.layer.{i}.attention.attention.query`, also what 5.x `save_pretrained` writes to disk)
and 5.x in-memory (`layers.{i}.attention.q_proj`, what mmjax writes) names work.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from mmjax.export.atomic import atomic_directory
from mmjax.export.hf_vitmae import add_hf_encoder, hf_encoder_config, hf_encoder_fields, normalize_key
from mmjax.export.plan import PlanBuilder, apply_plan, invert_plan, to_numpy
from mmjax.models.config import ViTConfig
from mmjax.ops.posemb import sincos_2d

# Heads that sit on top of the encoder; dropped on import (they are not part of `ViTEncoder`).
HF_VIT_IGNORED = ("pooler.", "classifier.")


def vit_config_from_hf(hf_config: Any) -> ViTConfig:
    """mmjax `ViTConfig` (learned position table) from an HF `ViTConfig` (object or dict)."""
    return ViTConfig(**hf_encoder_fields(hf_config), posemb="learned")


def hf_vit_plan(config: ViTConfig):
    builder = PlanBuilder()
    add_hf_encoder(builder, "", config, root=())
    return builder.plan


def convert_hf_vit(
    state_dict: Mapping[str, Any], hf_config: Any, ignore: Iterable[str] = HF_VIT_IGNORED
) -> tuple[ViTConfig, dict[str, Any]]:
    """Convert an HF ViT checkpoint into `ViTEncoder` params.

    Args:
      state_dict: key -> array (numpy or torch); a `vit.` prefix (classification models) is stripped.
      hf_config: HF `ViTConfig` or its dict.
      ignore: key prefixes dropped before checking (the pooler and classifier by default).

    Returns:
      `(ViTConfig, params)` for `ViTEncoder(config).apply({"params": params}, images)`, whose
      output equals HF's `last_hidden_state`.

    Raises:
      CheckpointMismatchError: listing every missing, unexpected and mis-shaped key.
    """
    ignore = tuple(ignore)
    arrays = {}
    for key, value in state_dict.items():
        key = normalize_key(key.removeprefix("vit."))
        if not key.startswith(ignore):
            arrays[key] = to_numpy(value)
    config = vit_config_from_hf(hf_config)
    return config, apply_plan(hf_vit_plan(config), arrays)


def load_hf_vit(directory: str | os.PathLike) -> tuple[ViTConfig, dict[str, Any]]:
    """Convert a local HF ViT directory (`config.json` + `model.safetensors`); no network."""
    from safetensors.numpy import load_file

    with open(os.path.join(directory, "config.json")) as f:
        hf_config = json.load(f)
    return convert_hf_vit(load_file(os.path.join(directory, "model.safetensors")), hf_config)


def hf_vit_config(config: ViTConfig) -> dict[str, Any]:
    """The `config.json` dict of an HF `ViTConfig` describing a `ViTEncoder` (square sizes only)."""
    return {"architectures": ["ViTModel"], "model_type": "vit", **hf_encoder_config(config, "ViT")}


def to_hf_vit(config: ViTConfig, params: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """`ViTEncoder` params -> HF 5.x `ViTModel` state dict (no pooler) and config dict.

    A `sincos2d` encoder's fixed table is written as HF's (learned) `position_embeddings`.
    """
    hf_config = hf_vit_config(config)
    fixed = {}
    if config.posemb != "learned":
        fixed["embeddings.position_embeddings"] = sincos_2d(config.grid, config.width, cls_token=True)[None]
    return invert_plan(hf_vit_plan(config), params, fixed), hf_config


def save_hf_vit(config: ViTConfig, params: Mapping[str, Any], out: str | os.PathLike, force: bool = False) -> str:
    """Write a `ViTModel` directory (`config.json` + `model.safetensors`) atomically.

    Load with `transformers.ViTModel.from_pretrained(out, add_pooling_layer=False)`; its
    `last_hidden_state` is `ViTEncoder`'s output. `load_hf_vit(out)` reads it back.
    """
    from safetensors.numpy import save_file

    state, hf_config = to_hf_vit(config, params)
    with atomic_directory(out, force) as tmp:
        save_file(state, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(hf_config, f, indent=2)
    return os.fspath(out)
