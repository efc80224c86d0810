"""Frozen model configurations and the ViT size table (REFERENCE.md)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax.numpy as jnp
import ml_collections

from mmjax.config import dataclass_from_config, knob, section_config, to_dict
from mmjax.ops.attention import DEFAULT_IMPLEMENTATION, IMPLEMENTATIONS
from mmjax.ops.patches import as_pair, grid_shape

# name -> (width, depth, heads); the MLP is 4x wide.
VIT_SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
    "huge": (1280, 32, 16),
}
POSEMB_KINDS = ("sincos2d", "learned")
# The encoder may also go without an absolute position embedding (BEiT with a relative bias).
ENCODER_POSEMB_KINDS = (*POSEMB_KINDS, "none")
# model.rel_pos_bias: no relative position bias, one table for all blocks, or one per block.
REL_POS_BIAS_KINDS = ("none", "shared", "layer")
DTYPES = ("float32", "bfloat16", "float16")
# Rematerialization policies (mmjax/models/transformer.py REMAT_POLICIES).
REMAT_NAMES = ("none", "full", "dots", "dots_no_batch")


@dataclasses.dataclass(frozen=True, kw_only=True)
class AttentionOption:
    """The one declaration of `attention_impl`: every section and transformer config that picks an
    attention implementation inherits it (keyword-only, so it can follow fields without defaults)."""

    attention_impl: str = knob(
        DEFAULT_IMPLEMENTATION, "mmjax.ops.attention implementation of every block", choices=IMPLEMENTATIONS
    )

    def check_attention_impl(self, where: str) -> None:
        """The knob's check for a section built in Python (a config is checked by `dataclass_from_config`)."""
        if self.attention_impl not in IMPLEMENTATIONS:
            raise ValueError(f"{where}.attention_impl must be one of {IMPLEMENTATIONS}, got {self.attention_impl!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TransformerConfig(AttentionOption):
    """One stack of pre-LN blocks (`mmjax.models.transformer.TransformerStack`), built with keywords.

    `depth`, `heads`, `mlp_dim` size it (the width is the input's). `dtype` is the compute dtype
    (parameters, softmax and LayerNorm statistics stay float32); `remat` and `scan` are memory
    options that keep the values. `key_bias`, `layer_scale` and `rel_pos_entries` are BEiT's block
    options; `drop_path` is the last block's stochastic-depth rate (timm's linear rule over blocks).
    """

    depth: int
    heads: int
    mlp_dim: int
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    dtype: str = "float32"
    remat: str = "none"
    scan: bool = False
    key_bias: bool = True
    layer_scale: float = 0.0
    rel_pos_entries: int = 0
    drop_path: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "dtype", jnp.dtype(self.dtype).name)
        self.check_attention_impl("transformer")

    @property
    def compute_dtype(self) -> jnp.dtype:
        return jnp.dtype(self.dtype)


# The fields a model section shares with the `TransformerConfig` of its blocks.
STACK_FIELDS = ("depth", "heads", "mlp_dim", "layer_norm_eps", "qkv_bias", "dtype", "attention_impl", "remat", "scan")


def transformer_config(section: object, size: object | None = None, **changes: object) -> TransformerConfig:
    """The blocks a model section describes: its `STACK_FIELDS` (those it has); `size`, another section
    (a decoder's, a predictor's), gives `depth`, `heads` and `mlp_dim` instead; `changes` on top (an
    encoder's BEiT options)."""
    shared = {name: getattr(section, name) for name in STACK_FIELDS if hasattr(section, name)}
    if size is not None:
        shared.update(depth=size.depth, heads=size.heads, mlp_dim=size.mlp_dim)
    return TransformerConfig(**{**shared, **changes})


def dtype_knob() -> Any:
    """The `dtype` field of a model section."""
    return knob("float32", "compute dtype; parameters, softmax and LayerNorm statistics stay float32", choices=DTYPES)


def remat_knob() -> Any:
    """The `remat` field of a model section."""
    return knob("none", "what the backward pass recomputes (values unchanged; less memory)", choices=REMAT_NAMES)


def scan_knob() -> Any:
    """The `scan` field of a model section."""
    return knob(False, "scan one block over the layers: params [depth, ...], one block compiled")


def _check_heads(where: str, width: int, heads: int, posemb: str, kinds: tuple[str, ...] = POSEMB_KINDS) -> None:
    if width <= 0 or heads <= 0 or width % heads:
        raise ValueError(f"{where}.width={width} must be a positive multiple of {where}.heads={heads}")
    if posemb not in kinds:
        raise ValueError(f"{where}.posemb must be one of {kinds}, got {posemb!r}")
    if posemb == "sincos2d" and width % 4:
        raise ValueError(f"{where}.width={width} must be divisible by 4 for sincos2d position embeddings")


@dataclasses.dataclass(frozen=True)
class ViTConfig(AttentionOption):
    """A ViT encoder over a fixed image size.

    `posemb="sincos2d"` is MAE's fixed embedding (not a parameter); `"learned"` makes it a
    parameter `[1, 1 + N, D]` initialised to the same values; `"none"` adds none (BEiT with a
    relative position bias). `key_bias`, `layer_scale` and `rel_pos_bias` are BEiT's block
    options (see `mmjax.models.transformer.EncoderBlock`). `dtype` is the compute
    dtype; parameters, softmax and LayerNorm statistics stay float32. `remat` and `scan`
    (memory options, see `TransformerStack`) apply to every transformer stack of the model.
    """

    image_size: int | tuple[int, int] = knob((224, 224), "input (height, width) in pixels, or one side")
    patch_size: int | tuple[int, int] = knob((16, 16), "patch (height, width) in pixels, or one side")
    channels: int = knob(3, "input channels")
    width: int = knob(768, "token width")
    depth: int = knob(12, "transformer blocks")
    heads: int = knob(12, "attention heads; width must be a multiple")
    mlp_dim: int = knob(3072, "hidden size of the MLPs")
    layer_norm_eps: float = knob(1e-6, "eps of every LayerNorm")
    qkv_bias: bool = knob(True, "biases in the q, k, v projections")
    posemb: str = knob("sincos2d", "absolute positions: MAE's fixed sin-cos, learned from it, or none")
    dtype: str = dtype_knob()
    remat: str = remat_knob()
    scan: bool = scan_knob()
    key_bias: bool = knob(True, "the key projection has a bias when qkv_bias (BEiT: False; q and v keep theirs)")
    layer_scale: float = knob(0.0, "init of the per-channel gammas on both residual branches; 0: none", low=0.0)
    rel_pos_bias: str = knob(
        "none",
        "BEiT's learned relative position bias: none, one table shared by all blocks, or one per block",
        choices=REL_POS_BIAS_KINDS,
    )

    def __post_init__(self):
        object.__setattr__(self, "image_size", as_pair(self.image_size, "model.image_size"))
        object.__setattr__(self, "patch_size", as_pair(self.patch_size, "model.patch_size"))
        grid_shape(self.image_size, self.patch_size)
        _check_heads("model", self.width, self.heads, self.posemb, ENCODER_POSEMB_KINDS)
        if self.channels <= 0 or self.depth < 0 or self.mlp_dim <= 0:
            raise ValueError(
                f"model.channels, model.depth and model.mlp_dim must be positive, got "
                f"{self.channels}, {self.depth}, {self.mlp_dim}"
            )
        if self.dtype not in DTYPES:
            raise ValueError(f"model.dtype must be one of {DTYPES}, got {self.dtype!r}")
        self.check_attention_impl("model")
        if self.remat not in REMAT_NAMES:
            raise ValueError(f"model.remat must be one of {REMAT_NAMES}, got {self.remat!r}")
        if not isinstance(self.scan, bool):
            raise ValueError(f"model.scan must be True or False, got {self.scan!r}")
        if not isinstance(self.key_bias, bool):
            raise ValueError(f"model.key_bias must be True or False, got {self.key_bias!r}")
        scale = self.layer_scale
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not (math.isfinite(scale) and scale >= 0):
            raise ValueError(
                f"model.layer_scale must be a finite number >= 0 (0: no layer scale), got {self.layer_scale!r}"
            )
        if self.rel_pos_bias not in REL_POS_BIAS_KINDS:
            raise ValueError(f"model.rel_pos_bias must be one of {REL_POS_BIAS_KINDS}, got {self.rel_pos_bias!r}")

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid `(rows, cols)`."""
        return grid_shape(self.image_size, self.patch_size)

    @property
    def num_patches(self) -> int:
        rows, cols = self.grid
        return rows * cols

    @property
    def patch_dim(self) -> int:
        """Length of one patch vector, `p_h * p_w * C`."""
        return self.patch_size[0] * self.patch_size[1] * self.channels

    @property
    def compute_dtype(self) -> jnp.dtype:
        return jnp.dtype(self.dtype)


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    """MAE's light decoder (defaults: 512 wide, 8 blocks, 16 heads)."""

    width: int = knob(512, "decoder token width")
    depth: int = knob(8, "decoder blocks")
    heads: int = knob(16, "decoder attention heads; width must be a multiple")
    mlp_dim: int = knob(2048, "hidden size of the decoder's MLPs")
    posemb: str = knob("sincos2d", "decoder positions: fixed sin-cos, or learned from it")

    def __post_init__(self):
        _check_heads("decoder", self.width, self.heads, self.posemb)
        if self.depth < 0 or self.mlp_dim <= 0:
            raise ValueError(f"decoder.depth and decoder.mlp_dim must be positive, got {self.depth}, {self.mlp_dim}")


def vit_size(size: str) -> dict[str, int]:
    """Width, depth, heads and MLP size of a named ViT size (`tiny` ... `huge`)."""
    if size not in VIT_SIZES:
        raise ValueError(f"model.size must be one of {sorted(VIT_SIZES)}, got {size!r}")
    width, depth, heads = VIT_SIZES[size]
    return {"width": width, "depth": depth, "heads": heads, "mlp_dim": 4 * width}


def vit_config_from_section(section) -> ViTConfig:
    """A `model` config section -> `ViTConfig`; `size` fills width/depth/heads/mlp_dim left at None."""
    model = to_dict(section)
    size = model.pop("size", None)
    sized = {**(vit_size(size) if size else {}), **{k: v for k, v in model.items() if v is not None}}
    return dataclass_from_config(ViTConfig, sized, "model")


def vit_section(size: str | None = "base", image_size: int = 224, patch_size: int = 16) -> ml_collections.ConfigDict:
    """The `model` section of an experiment config for a ViT: `ViTConfig`'s fields and `size`.

    With a `size` (`tiny` ... `huge`), width, depth, heads and mlp_dim are None: taken from the
    size table unless set. Every other field has `ViTConfig`'s default.
    """
    shape = dict.fromkeys(("width", "depth", "heads", "mlp_dim")) if size else {}
    section = section_config(ViTConfig, image_size=image_size, patch_size=patch_size, **shape)
    section.size = ml_collections.FieldReference(size, field_type=str)
    return section
