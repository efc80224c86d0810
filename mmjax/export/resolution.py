"""Move an encoder's params to another image resolution (same patch size)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from mmjax.models.config import ViTConfig
from mmjax.ops.posemb import resize_position_table


def resize_encoder(
    config: ViTConfig, params: Mapping[str, Any], image_size: int | tuple[int, int]
) -> tuple[ViTConfig, dict[str, Any]]:
    """`ViTEncoder` config and params for `image_size`.

    A learned table (`pos_embedding` `[1, 1 + N, D]`) is resized bicubically like HF ViT's
    `interpolate_pos_encoding` (see `mmjax.ops.posemb.resize_bicubic`); a `sincos2d` encoder
    has no table and recomputes it for the new grid. Other parameters are shared, not copied.
    """
    if config.rel_pos_bias != "none":
        raise ValueError(
            f"resize_encoder: model.rel_pos_bias={config.rel_pos_bias!r} tables are sized for the "
            f"{config.grid} grid and are not resized; expected model.rel_pos_bias='none'"
        )
    new = dataclasses.replace(config, image_size=image_size)
    params = dict(params)
    if config.posemb == "learned":
        if "pos_embedding" not in params:
            raise KeyError("posemb='learned' params need 'pos_embedding' [1, 1 + N, D]")
        params["pos_embedding"] = resize_position_table(params["pos_embedding"], config.grid, new.grid)
    return new, params
