"""`jax.export` of an encoder's feature function: StableHLO with a symbolic batch size."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.export.atomic import atomic_directory
from mmjax.export.encoder import POOLS, encoder_features, flatten_params, unflatten_params
from mmjax.export.stablehlo_loader import STABLEHLO_FORMAT
from mmjax.models.config import ViTConfig

DEFAULT_PLATFORMS = ("cpu", "cuda", "tpu")


def export_features(
    config: ViTConfig, params: Mapping[str, Any], pool: str = "cls", platforms: Sequence[str] = DEFAULT_PLATFORMS
) -> tuple[jax.export.Exported, dict[str, Any]]:
    """Lower `images -> features` to StableHLO with a symbolic batch `b`.

    The parameters are an argument (a list in `param_names` order), not baked-in constants,
    so large encoders stay under protobuf limits and the weights live in safetensors.

    Returns:
      `(exported, flat_params)`; `exported.call(list_of_params, images [b, H, W, C])`.
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    flat = flatten_params(params)
    names = list(flat)

    def features(param_list, images):
        return encoder_features(config, unflatten_params(dict(zip(names, param_list, strict=True))), images, pool)

    (batch,) = jax.export.symbolic_shape("b")
    images = jax.ShapeDtypeStruct((batch, *config.image_size, config.channels), jnp.float32)
    param_specs = [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in flat.values()]
    exported = jax.export.export(jax.jit(features), platforms=tuple(platforms))(param_specs, images)
    return exported, flat


def save_stablehlo(
    config: ViTConfig,
    params: Mapping[str, Any],
    out: str | os.PathLike,
    pool: str = "cls",
    force: bool = False,
    platforms: Sequence[str] = DEFAULT_PLATFORMS,
) -> str:
    """Write `features.stablehlo`, `params.safetensors`, `meta.json` and `load.py` to `out` atomically.

    Load with `mmjax.export.load_feature_extractor(out)` or, without mmjax, `out/load.py`.
    """
    exported, flat = export_features(config, params, pool, platforms)
    inputs = jax.ShapeDtypeStruct((1, *config.image_size, config.channels), jnp.float32)
    return write_stablehlo(exported, flat, inputs, pool, out, force)


def write_stablehlo(
    exported: jax.export.Exported,
    flat: Mapping[str, np.ndarray],
    inputs: jax.ShapeDtypeStruct,
    pool: str,
    out: str | os.PathLike,
    force: bool = False,
) -> str:
    """The files of a `stablehlo` export: `exported` takes `(list of flat's values in order, inputs [b, ...])`;
    `inputs` is one example's `[1, ...]`."""
    from safetensors.numpy import save_file

    meta = {
        "format": STABLEHLO_FORMAT,
        "version": 1,
        "pool": pool,
        "input_shape": list(inputs.shape[1:]),
        "input_dtype": np.dtype(inputs.dtype).name,
        "param_names": list(flat),
        "platforms": list(exported.platforms),
    }
    with atomic_directory(out, force) as tmp:
        with open(os.path.join(tmp, "features.stablehlo"), "wb") as f:
            f.write(exported.serialize())
        save_file(dict(flat), os.path.join(tmp, "params.safetensors"))
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump(meta, f, indent=2)
        shutil.copyfile(os.path.join(os.path.dirname(__file__), "stablehlo_loader.py"), os.path.join(tmp, "load.py"))
    return os.fspath(out)
