"""Run an exported mmjax feature extractor with jax alone (no mmjax, no model code).

This file is copied into every `stablehlo` export as `load.py`:

    from load import load_feature_extractor      # or mmjax.export.load_feature_extractor
    extract = load_feature_extractor("OUT")
    features = extract(images)                     # [B, H, W, C] float32 -> [B, D]

(or whatever one example of the method's input is: `meta.json`'s `input_shape`, e.g. a video
clip `[T, H, W, C]`, a series window `[L, V]`).

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
    """`extract(inputs)` from an export directory.

    The directory holds `features.stablehlo` (a serialized `jax.export.Exported` taking
    `(params, inputs)` with a symbolic batch size), `params.safetensors` and `meta.json`.

    Returns:
      A function `[B, *input_shape] -> features` (images `[B, H, W, C]` float32 -> `[B, D]` for
      cls/mean pooling, `[B, 1 + N, D]` for tokens) for any batch size `B`.
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
    shape = tuple(meta["input_shape"] if "input_shape" in meta else meta["image_shape"])  # older exports: images
    dtype = np.dtype(meta.get("input_dtype", "float32"))

    def extract(inputs: np.ndarray) -> jax.Array:
        inputs = jax.numpy.asarray(inputs, dtype=dtype)
        if inputs.ndim != len(shape) + 1 or tuple(inputs.shape[1:]) != shape:
            raise ValueError(f"inputs must be [B, {', '.join(map(str, shape))}], got {inputs.shape}")
        return exported.call(params, inputs)

    return extract
