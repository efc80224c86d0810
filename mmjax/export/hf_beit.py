"""HF transformers `BeitForMaskedImageModeling` <-> mmjax `BEiTModel`, and HF `Data2VecVisionModel`
<-> mmjax `ViTEncoder`, both ways.

Both HF models are the same encoder: a ViT whose key projection has no bias, with optional
layer scale (`lambda_1` / `lambda_2` -> `gamma_1` / `gamma_2`), an optional absolute position
table (`use_absolute_position_embeddings`, else `posemb="none"`) and an optional relative
position bias, one table shared by all blocks or one per block (`model.rel_pos_bias`).
Data2VecVision adds nothing but its weights and the transformers 4.x key names it still uses
in memory (`encoder.layer.{i}.attention.attention.query`, ...).

BEiT's masked-image model takes the encoder without a final norm (`use_mean_pooling=True`,
as every converted BEiT checkpoint) and then its own `layernorm` and `lm_head`: that
`layernorm` is the mmjax encoder's final norm, `lm_head` the code head. A Data2VecVisionModel
converts when its last hidden state ends in a LayerNorm (`use_mean_pooling=False`).

Only square images: on a non-square grid HF reads its relative table with the two sides
swapped and resamples its absolute table, so it computes another function than BEiT's.
Old checkpoints' `relative_position_index` buffers are checked against the index and dropped.
Every other key is accounted for: missing, unexpected or mis-shaped keys raise
`CheckpointMismatchError`. On export, a key bias (which cannot change the attention weights:
it adds the same logit to every key of a query) is dropped, and missing q/v biases are zeros.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import ml_collections
import numpy as np

from mmjax.export.hf_vitmae import hf_config_dict, hf_encoder_config, hf_encoder_fields, normalize_key
from mmjax.export.plan import CheckpointMismatchError, Path, Plan, PlanBuilder, apply_plan, invert_plan, to_numpy
from mmjax.methods.beit import default_config
from mmjax.models.beit import BEiTModel
from mmjax.models.config import ViTConfig, vit_config_from_section
from mmjax.ops.posemb import sincos_2d
from mmjax.ops.relative_position import relative_position_entries, relative_position_index


@dataclasses.dataclass(frozen=True)
class _Names:
    """Where one layout keeps a block's pieces (relative to the model prefix)."""

    layer: str  # a block's prefix, formatted with its index
    query: str
    key: str
    value: str
    out: str
    fc1: str
    fc2: str
    block_table: str
    shared_table: str


# transformers 5.x in memory (BeitForMaskedImageModeling.state_dict()).
BEIT_NAMES = _Names(
    layer="layers.{}",
    query="attention.q_proj",
    key="attention.k_proj",
    value="attention.v_proj",
    out="attention.o_proj",
    fc1="mlp.fc1",
    fc2="mlp.fc2",
    block_table="relative_position_bias.relative_position_bias_table",
    shared_table="shared_position_bias.relative_position_bias_table",
)
# Data2VecVisionModel.state_dict(), the 4.x layout.
DATA2VEC_NAMES = _Names(
    layer="encoder.layer.{}",
    query="attention.attention.query",
    key="attention.attention.key",
    value="attention.attention.value",
    out="attention.output.dense",
    fc1="intermediate.dense",
    fc2="output.dense",
    block_table="attention.attention.relative_position_bias.relative_position_bias_table",
    shared_table="encoder.relative_position_bias.relative_position_bias_table",
)
# BEiT 4.x (hub files, 5.x `save_pretrained`) -> 5.x, after `normalize_key`'s ViT renames.
_BEIT_RENAMES = [
    (re.compile(r"(^|\.)encoder\.relative_position_bias\."), r"\1shared_position_bias."),
    (re.compile(r"\.attention\.attention\.relative_position_bias\."), ".relative_position_bias."),
]
_INDEX_SUFFIX = "relative_position_index"
# Heads and poolers outside `ViTEncoder`, dropped when importing a Data2VecVisionModel.
DATA2VEC_IGNORED = ("pooler.", "classifier.")


def normalize_beit_key(key: str) -> str:
    """An HF BEiT key (4.x, 5.x, or as 5.x `save_pretrained` writes it) in the 5.x in-memory layout."""
    key = normalize_key(key)
    for pattern, replacement in _BEIT_RENAMES:
        key = pattern.sub(replacement, key)
    return key


def beit_encoder_fields(hf_config: Any) -> dict[str, Any]:
    """The mmjax `model` fields of an HF `BeitConfig` / `Data2VecVisionConfig` (object or dict)."""
    c = hf_config_dict(hf_config)
    image, patch = c["image_size"], c["patch_size"]
    sides = tuple(image) if isinstance(image, list | tuple) else (image, image)
    if sides[0] != sides[1] or isinstance(patch, list | tuple):
        raise ValueError(
            f"image_size={image}, patch_size={patch}: only square images and an int patch size convert; "
            f"HF BEiT reads its relative table with the sides swapped on non-square grids"
        )
    shared, layer = c.get("use_shared_relative_position_bias", False), c.get("use_relative_position_bias", False)
    if shared and layer:
        raise ValueError(
            "use_shared_relative_position_bias and use_relative_position_bias are both true; mmjax takes one "
            "(model.rel_pos_bias='shared' or 'layer')"
        )
    fields = hf_encoder_fields({**c, "image_size": sides[0]})
    fields.update(
        qkv_bias=True,
        key_bias=False,
        layer_scale=max(float(c.get("layer_scale_init_value", 0.1)), 0.0),
        rel_pos_bias="shared" if shared else "layer" if layer else "none",
        posemb="learned" if c.get("use_absolute_position_embeddings", False) else "none",
    )
    return fields


def _check_pooling(c: dict[str, Any], wanted: bool, model: str, why: str) -> None:
    if c.get("use_mean_pooling", True) != wanted:
        raise ValueError(f"use_mean_pooling={c.get('use_mean_pooling', True)} is not supported for HF {model}: {why}")


def _encoder_plan(builder: PlanBuilder, prefix: str, cfg: ViTConfig, names: _Names, root: Path, mask: bool) -> None:
    """Entries of one HF BEiT-style encoder (q/v biases, no k bias) -> a `ViTEncoder` at `root`, final norm aside."""
    d, h = cfg.width, cfg.heads
    head_dim, entries = d // h, relative_position_entries(cfg.grid)
    builder.tensor(f"{prefix}embeddings.cls_token", (*root, "cls_token"), (1, 1, d))
    if mask:
        builder.tensor(f"{prefix}embeddings.mask_token", (*root, "mask_token"), (1, 1, d))
    if cfg.posemb != "none":
        builder.tensor(f"{prefix}embeddings.position_embeddings", (*root, "pos_embedding"), (1, cfg.num_patches + 1, d))
    builder.patch_conv(
        f"{prefix}embeddings.patch_embeddings.projection", (*root, "patch_embed"), d, cfg.channels, cfg.patch_size
    )
    if cfg.rel_pos_bias == "shared":
        builder.tensor(f"{prefix}{names.shared_table}", (*root, "rel_pos_bias", "table"), (entries, h))
    for i in range(cfg.depth):
        key, path = f"{prefix}{names.layer.format(i)}", (*root, "blocks", f"block_{i}")
        for source, name, bias in (
            (names.query, "query", True),
            (names.key, "key", False),
            (names.value, "value", True),
        ):
            builder.linear(
                f"{key}.{source}",
                (*path, "attn", name),
                d,
                d,
                kernel_shape=(d, h, head_dim),
                bias_shape=(h, head_dim),
                bias=bias,
            )
        builder.linear(f"{key}.{names.out}", (*path, "attn", "out"), d, d, kernel_shape=(h, head_dim, d))
        builder.norm(f"{key}.layernorm_before", (*path, "norm1"), d)
        builder.norm(f"{key}.layernorm_after", (*path, "norm2"), d)
        builder.linear(f"{key}.{names.fc1}", (*path, "mlp", "fc1"), d, cfg.mlp_dim)
        builder.linear(f"{key}.{names.fc2}", (*path, "mlp", "fc2"), cfg.mlp_dim, d)
        if cfg.layer_scale:
            builder.tensor(f"{key}.lambda_1", (*path, "gamma_1"), (d,))
            builder.tensor(f"{key}.lambda_2", (*path, "gamma_2"), (d,))
        if cfg.rel_pos_bias == "layer":
            builder.tensor(f"{key}.{names.block_table}", (*path, "rel_pos_bias", "table"), (entries, h))


def _beit_plan(cfg: ViTConfig, vocab_size: int) -> Plan:
    builder = PlanBuilder()
    _encoder_plan(builder, "beit.", cfg, BEIT_NAMES, ("encoder",), mask=True)
    builder.norm("layernorm", ("encoder", "norm"), cfg.width)
    builder.linear("lm_head", ("head",), cfg.width, vocab_size)
    return builder.plan


def _data2vec_plan(cfg: ViTConfig, mask: bool) -> Plan:
    builder = PlanBuilder()
    _encoder_plan(builder, "", cfg, DATA2VEC_NAMES, (), mask=mask)
    builder.norm("layernorm", ("norm",), cfg.width)
    return builder.plan


def _drop_index_buffers(arrays: dict[str, np.ndarray], grid: tuple[int, int]) -> dict[str, np.ndarray]:
    """Check old checkpoints' `relative_position_index` buffers against BEiT's index, then drop them."""
    expected = relative_position_index(grid)
    wrong = [
        f"{key} {tuple(value.shape)} != the index of grid {grid}"
        for key, value in arrays.items()
        if key.endswith(_INDEX_SUFFIX) and (value.shape != expected.shape or not np.array_equal(value, expected))
    ]
    if wrong:
        raise CheckpointMismatchError([], [], sorted(wrong))
    return {key: value for key, value in arrays.items() if not key.endswith(_INDEX_SUFFIX)}


# --- BEiT masked image modeling ------------------------------------------------------------


def beit_config_from_hf(hf_config: Any) -> ml_collections.ConfigDict:
    """mmjax BEiT method config (its `model` section) from an HF `BeitConfig` of a `BeitForMaskedImageModeling`.

    `beit.tokenizer_workdir` stays empty: HF ships no tokenizer; the vocabulary size is `hf_config.vocab_size`.
    """
    c = hf_config_dict(hf_config)
    _check_pooling(c, True, "BeitForMaskedImageModeling", "its encoder would end in two LayerNorms")
    config = default_config()
    config.model.update(size=None, **beit_encoder_fields(c))
    return config


def beit_model_from_hf(hf_config: Any) -> BEiTModel:
    """The mmjax `BEiTModel` (encoder and code head) an HF `BeitConfig` describes."""
    c = hf_config_dict(hf_config)
    return BEiTModel(vit_config_from_section(beit_config_from_hf(c).model), c["vocab_size"])


def convert_hf_beit(state_dict: Mapping[str, Any], hf_config: Any) -> tuple[BEiTModel, dict[str, Any]]:
    """Convert an HF `BeitForMaskedImageModeling` checkpoint.

    Args:
      state_dict: key -> array (numpy or torch), 4.x or 5.x key names.
      hf_config: `BeitConfig` or its dict.

    Returns:
      `(model, params)`: `model.apply({"params": params}, images [B, H, W, C], hidden [B, N])`
      gives HF's `logits` `[B, N, vocab_size]` for `bool_masked_pos=hidden`; the params are
      a BEiT method's `params["model"]` (numpy float32).

    Raises:
      CheckpointMismatchError: listing every missing, unexpected and mis-shaped key.
    """
    model = beit_model_from_hf(hf_config)
    arrays = {normalize_beit_key(key): to_numpy(value) for key, value in state_dict.items()}
    arrays = _drop_index_buffers(arrays, model.config.grid)
    return model, apply_plan(_beit_plan(model.config, model.vocab_size), arrays)


def _hf_encoder_dict(cfg: ViTConfig, model: str) -> dict[str, Any]:
    vit_view = dataclasses.replace(cfg, posemb="learned", rel_pos_bias="none", layer_scale=0.0, key_bias=True)
    fields = hf_encoder_config(vit_view, model)
    fields.pop("qkv_bias")
    return {
        **fields,
        "use_absolute_position_embeddings": cfg.posemb != "none",
        "use_relative_position_bias": cfg.rel_pos_bias == "layer",
        "use_shared_relative_position_bias": cfg.rel_pos_bias == "shared",
        "layer_scale_init_value": float(cfg.layer_scale),
        "drop_path_rate": 0.0,
    }


def _export_view(cfg: ViTConfig) -> ViTConfig:
    """`cfg` as HF stores it: q/v biases, no k bias, a learned table in place of a fixed one."""
    posemb = "learned" if cfg.posemb != "none" else "none"
    return dataclasses.replace(cfg, qkv_bias=True, key_bias=False, posemb=posemb)


def _fixed(cfg: ViTConfig, plan: Plan, prefix: str) -> dict[str, np.ndarray]:
    """Source keys with no mmjax parameter behind them: a sincos table, zero q/v biases."""
    fixed = {}
    if cfg.posemb == "sincos2d":
        fixed[f"{prefix}embeddings.position_embeddings"] = sincos_2d(cfg.grid, cfg.width, cls_token=True)[None]
    if not cfg.qkv_bias:
        for key, entry in plan.items():
            if key.endswith(".bias") and entry.paths[0][-2] in ("query", "value"):
                fixed[key] = np.zeros(entry.shape, np.float32)
    return fixed


def hf_beit_config(model: BEiTModel) -> dict[str, Any]:
    """The `config.json` dict of an HF `BeitConfig` describing `model` as a `BeitForMaskedImageModeling`."""
    return {
        "architectures": ["BeitForMaskedImageModeling"],
        "model_type": "beit",
        **_hf_encoder_dict(model.config, "BEiT"),
        "vocab_size": model.vocab_size,
        "use_mask_token": True,
        "use_mean_pooling": True,
    }


def to_hf_beit(model: BEiTModel, params: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """mmjax `BEiTModel` params -> HF 5.x `BeitForMaskedImageModeling` state dict (numpy float32) and config dict."""
    hf_config = hf_beit_config(model)  # checks the shape constraints before any work
    plan = _beit_plan(_export_view(model.config), model.vocab_size)
    return invert_plan(plan, params, _fixed(model.config, plan, "beit.")), hf_config


# --- Data2VecVision encoder ----------------------------------------------------------------


def data2vec_vision_config_from_hf(hf_config: Any) -> ViTConfig:
    """mmjax `ViTConfig` from an HF `Data2VecVisionConfig` (object or dict)."""
    c = hf_config_dict(hf_config)
    _check_pooling(c, False, "Data2VecVisionModel", "its last hidden state has no final LayerNorm")
    return ViTConfig(**beit_encoder_fields(c))


def convert_hf_data2vec_vision(state_dict: Mapping[str, Any], hf_config: Any) -> tuple[ViTConfig, dict[str, Any]]:
    """Convert an HF `Data2VecVisionModel` checkpoint into `ViTEncoder` params.

    A `data2vec_vision.` prefix (task models) is stripped and the pooler / classifier dropped.
    `ViTEncoder(config).apply({"params": params}, images)` equals HF's `last_hidden_state`
    (with `hidden=bool_masked_pos` when the checkpoint has a mask token).

    Raises:
      CheckpointMismatchError: listing every missing, unexpected and mis-shaped key.
    """
    config = data2vec_vision_config_from_hf(hf_config)
    arrays = {}
    for key, value in state_dict.items():
        key = key.removeprefix("data2vec_vision.")
        if not key.startswith(DATA2VEC_IGNORED):
            arrays[key] = to_numpy(value)
    arrays = _drop_index_buffers(arrays, config.grid)
    mask = bool(hf_config_dict(hf_config).get("use_mask_token", False))
    return config, apply_plan(_data2vec_plan(config, mask), arrays)


def hf_data2vec_vision_config(config: ViTConfig, mask_token: bool = False) -> dict[str, Any]:
    """The `config.json` dict of an HF `Data2VecVisionConfig` describing a `ViTEncoder`."""
    return {
        "architectures": ["Data2VecVisionModel"],
        "model_type": "data2vec-vision",
        **_hf_encoder_dict(config, "Data2VecVision"),
        "use_mask_token": mask_token,
        "use_mean_pooling": False,
    }


def to_hf_data2vec_vision(config: ViTConfig, params: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """`ViTEncoder` params -> HF `Data2VecVisionModel` state dict (no pooler) and config dict.

    A `mask_token` in `params` is written with `use_mask_token=True`.
    """
    mask = "mask_token" in params
    hf_config = hf_data2vec_vision_config(config, mask)
    plan = _data2vec_plan(_export_view(config), mask)
    return invert_plan(plan, params, _fixed(config, plan, "")), hf_config


__all__ = [
    "beit_config_from_hf",
    "beit_encoder_fields",
    "beit_model_from_hf",
    "convert_hf_beit",
    "convert_hf_data2vec_vision",
    "data2vec_vision_config_from_hf",
    "hf_beit_config",
    "hf_data2vec_vision_config",
    "normalize_beit_key",
    "to_hf_beit",
    "to_hf_data2vec_vision",
]
