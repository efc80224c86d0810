"""Run an exported mmjax feature extractor with jax alone (no mmjax, no model code).

This file is copied into every `stablehlo` export as `load.py`:

    from load import load_feature_extractor      # or mmjax.export.load_feature_extractor
    extract = load_feature_extractor("OUT")
    features = extract(images)                     # [B, H, W, C] float32 -> [B, D]

Needs only `jax`, `numpy` and `safetensors`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import jax
import numpy as np

STABLEHLO_FORMAT = "mmjax-stablehlo-features"


def load_feature_extractor(path: str | os.PathLike) -> Callable[[np.ndarray], jax.Array]:
    """`extract(images)` from an export directory.

    The directory holds `features.stablehlo` (a serialized `jax.export.Exported` taking
    `(params, images)` with a symbolic batch size), `params.safetensors` and `meta.json`.

    Returns:
      A function `[B, H, W, C] float32 -> features` (`[B, D]` for cls/mean pooling,
      `[B, 1 + N, D]` for tokens) for any batch size `B`.
    """
    from safetensors.numpy import load_file

    with open(os.path.join(path, "meta.json")) as f:
        meta = json.load(f)
    if meta.get("format") != STABLEHLO_FORMAT:
        raise ValueError(f"{path}/meta.json: format must be {STABLEHLO_FORMAT!r}, got {meta.get('format')!r}")
    with open(os.path.join(path, "features.stablehlo"), "rb") as f:
        exported = jax.export.deserialize(bytearray(f.read()))
    flat = load_file(os.path.join(path, "params.safetensors"))
    params = [jax.numpy.asarray(flat[name]) for name in meta["param_names"]]
    image_shape = tuple(meta["image_shape"])

    def extract(images: np.ndarray) -> jax.Array:
        images = jax.numpy.asarray(images, dtype=jax.numpy.float32)
        if images.ndim != 4 or tuple(images.shape[1:]) != image_shape:
            raise ValueError(f"images must be [B, {', '.join(map(str, image_shape))}], got {images.shape}")
        return exported.call(params, images)

    return extract
