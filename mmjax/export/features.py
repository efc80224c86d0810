"""Export any method's feature function, whatever its encoder: `features(params, inputs, pool)` as StableHLO.

The methods without a ViT `encoder` hook (VideoMAE and Audio-MAE, their JEPAs, PatchTST,
TimesBERT, Point-MAE, the VQ / VAE tokenizers) still have `features(params, inputs, pool)`, the
function their probes score. It reads the prepared batch entry `input_key(method)`:
normalized images, video clips, spectrograms, series windows, point clouds, token rows, table
rows. This module lowers that function with a symbolic batch size; the parameters it reads
(and only those: a decoder, a teacher or a predictor that features never touch are left out)
are an argument, stored in safetensors under their pytree paths (`a/b/kernel`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.data.kinds import data_kind
from mmjax.export.atomic import atomic_directory
from mmjax.export.encoder import tree_paths, unflatten_params
from mmjax.methods.common import POOLS, input_key, read_leaves
from mmjax.train.checkpoint import config_as_dict

FEATURE_PARAMS_FORMAT = "mmjax-feature-params"


def feature_input(config: Any, method: Any) -> tuple[str, jax.ShapeDtypeStruct]:
    """The prepared batch entry `method.features` reads, and its shape for one example `[1, ...]`."""
    key = input_key(method)
    kind = data_kind(config.data)
    prepared = jax.eval_shape(lambda: kind.example_batch(config.data, 1))
    if key not in prepared:
        raise ValueError(
            f"export: the {config.method!r} method reads batch entry {key!r}, and data.kind="
            f"{config.data.get('kind', 'images')!r} prepares {sorted(prepared)}"
        )
    return key, prepared[key]


def flat_leaves(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Nested params -> `{"a/b/kernel": numpy array}` in their own dtypes, sorted by key."""
    flat = {"/".join(str(p.key) for p in path): np.ascontiguousarray(leaf) for path, leaf in tree_paths(params)}
    return dict(sorted(flat.items()))


def export_method_features(
    config: Any, method: Any, params: Mapping[str, Any], pool: str, platforms: Sequence[str]
) -> tuple[jax.export.Exported, dict[str, np.ndarray], jax.ShapeDtypeStruct]:
    """Lower `inputs -> method.features(params, inputs, pool)` with a symbolic batch `b`.

    Returns:
      `(exported, flat read params, the input of one example)`; `exported.call(list of those
      params in key order, inputs [b, ...])`.
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    _, example = feature_input(config, method)
    flat = flat_leaves(params)
    names = list(flat)

    def every_leaf(param_list, inputs):
        return method.features(unflatten_params(dict(zip(names, param_list, strict=True))), inputs, pool)

    kept = read_leaves(every_leaf, flat, example)
    shapes = {name: (flat[name].shape, flat[name].dtype) for name in names}

    def features(param_list, inputs):
        given = dict(zip(kept, param_list, strict=True))
        leaves = {n: given[n] if n in given else jnp.zeros(*shapes[n]) for n in names}
        return method.features(unflatten_params(leaves), inputs, pool)

    (batch,) = jax.export.symbolic_shape("b")
    inputs = jax.ShapeDtypeStruct((batch, *example.shape[1:]), example.dtype)
    specs = [jax.ShapeDtypeStruct(flat[n].shape, flat[n].dtype) for n in kept]
    exported = jax.export.export(jax.jit(features), platforms=tuple(platforms))(specs, inputs)
    return exported, {n: flat[n] for n in kept}, example


def save_feature_params(
    config: Any, flat: Mapping[str, np.ndarray], out: str | os.PathLike, force: bool = False
) -> str:
    """Write the params a method's `features` read (`model.safetensors`, pytree paths as keys) and the
    run's config (`config.json`) to `out` atomically; `load_feature_params` reads them back."""
    from safetensors.numpy import save_file

    with atomic_directory(out, force) as tmp:
        save_file(dict(flat), os.path.join(tmp, "model.safetensors"), metadata={"format": FEATURE_PARAMS_FORMAT})
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump({"format": FEATURE_PARAMS_FORMAT, "version": 1, "run": config_as_dict(config)}, f, indent=2)
    return os.fspath(out)


def load_feature_params(path: str | os.PathLike) -> tuple[ml_collections.ConfigDict, dict[str, Any]]:
    """`(the run's config, nested params)` from a `save_feature_params` directory: the leaves the method's
    `features` read (to call `features`, give the others any value of `method.init`'s shapes: they are unread)."""
    from safetensors.numpy import load_file

    with open(os.path.join(path, "config.json")) as f:
        meta = json.load(f)
    if meta.get("format") != FEATURE_PARAMS_FORMAT:
        raise ValueError(f"{path}/config.json: format must be {FEATURE_PARAMS_FORMAT!r}, got {meta.get('format')!r}")
    return ml_collections.ConfigDict(meta["run"]), unflatten_params(load_file(os.path.join(path, "model.safetensors")))


__all__ = [
    "FEATURE_PARAMS_FORMAT",
    "load_feature_params",
    "save_feature_params",
    "export_method_features",
    "feature_input",
    "flat_leaves",
]
