"""timm `VisionTransformer` state dicts -> mmjax `ViTEncoder` params.

timm names: `cls_token`, `pos_embed`, `patch_embed.proj`, `blocks.{i}.norm1`,
`blocks.{i}.attn.qkv` (q, k and v fused along the output axis), `blocks.{i}.attn.proj`,
`blocks.{i}.norm2`, `blocks.{i}.mlp.fc1/fc2`, `norm`. The state dict does not record the
head count, so it is an argument; everything else is read off the shapes. Only the
class-token, absolute-position-embedding, final-norm layout (timm's default ViT) is supported.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from mmjax.export.plan import TIMM_BLOCK, CheckpointMismatchError, PlanBuilder, add_block, apply_plan, to_numpy
from mmjax.models.config import ViTConfig

# Classification heads; dropped on import.
TIMM_IGNORED = ("head.", "fc_norm.")
_REQUIRED = ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.mlp.fc1.weight")


def timm_vit_config(
    arrays: Mapping[str, Any],
    heads: int,
    layer_norm_eps: float = 1e-6,
    image_size: int | tuple[int, int] | None = None,
) -> ViTConfig:
    """Infer a `ViTConfig` (learned position table) from a timm state dict's shapes.

    `image_size` defaults to a square grid read off `pos_embed` times the patch size.
    """
    missing = [k for k in _REQUIRED if k not in arrays]
    if missing:
        raise CheckpointMismatchError(missing, [], [])
    width, channels, ph, pw = arrays["patch_embed.proj.weight"].shape
    depth = 1 + max(int(m.group(1)) for k in arrays if (m := re.match(r"blocks\.(\d+)\.", k)))
    if image_size is None:
        side = math.isqrt(arrays["pos_embed"].shape[1] - 1)
        if side * side != arrays["pos_embed"].shape[1] - 1:
            raise ValueError(f"pos_embed {arrays['pos_embed'].shape} is not a square grid; pass image_size")
        image_size = (side * ph, side * pw)
    return ViTConfig(
        image_size=image_size,
        patch_size=(ph, pw),
        channels=channels,
        width=width,
        depth=depth,
        heads=heads,
        mlp_dim=arrays["blocks.0.mlp.fc1.weight"].shape[0],
        layer_norm_eps=layer_norm_eps,
        qkv_bias="blocks.0.attn.qkv.bias" in arrays,
        posemb="learned",
    )


def timm_vit_plan(config: ViTConfig):
    builder = PlanBuilder()
    d = config.width
    builder.tensor("cls_token", ("cls_token",), (1, 1, d))
    builder.tensor("pos_embed", ("pos_embedding",), (1, config.num_patches + 1, d))
    builder.patch_conv("patch_embed.proj", ("patch_embed",), d, config.channels, config.patch_size)
    for i in range(config.depth):
        add_block(
            builder,
            f"blocks.{i}",
            ("blocks", f"block_{i}"),
            TIMM_BLOCK,
            d,
            config.heads,
            config.mlp_dim,
            config.qkv_bias,
        )
    builder.norm("norm", ("norm",), d)
    return builder.plan


def convert_timm_vit(
    state_dict: Mapping[str, Any],
    heads: int,
    layer_norm_eps: float = 1e-6,
    image_size: int | tuple[int, int] | None = None,
    ignore: Iterable[str] = TIMM_IGNORED,
) -> tuple[ViTConfig, dict[str, Any]]:
    """Convert a timm ViT state dict into `ViTEncoder` params.

    Args:
      state_dict: key -> array (numpy or torch), timm names.
      heads: attention heads (timm does not store it).
      layer_norm_eps: timm's ViTs use 1e-6.
      image_size: defaults to the square grid of `pos_embed`.
      ignore: key prefixes dropped before checking (classification head by default).

    Returns:
      `(ViTConfig, params)` for `ViTEncoder`; its output is timm's `forward_features`.

    Raises:
      CheckpointMismatchError: listing every missing, unexpected and mis-shaped key.
    """
    ignore = tuple(ignore)
    arrays = {k: to_numpy(v) for k, v in state_dict.items() if not k.startswith(ignore)}
    config = timm_vit_config(arrays, heads, layer_norm_eps, image_size)
    return config, apply_plan(timm_vit_plan(config), arrays)
