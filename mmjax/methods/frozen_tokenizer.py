"""A generator's frozen tokenizer (MaskGIT over VQ codes, GIVT / MAR over VAE latents).

The generator's config holds the tokenizer run's config (`tokenizer_config`) and names its workdir
(`<section>.tokenizer_workdir`); the method builds the tokenizer from the config, declares the run
(`frozen_runs`), and the trainer loads it once so `load_frozen` can copy its params into
`params["tokenizer"]`, which `trainable` keeps out of the optimizer. A generator's workdir then
holds everything `sample` needs.
"""

from __future__ import annotations

from typing import Any

import jax
import ml_collections

from mmjax.methods.protocol import LoadedRun, Params, RunPart
from mmjax.methods.registry import build_method


def build_tokenizer(config: ml_collections.ConfigDict, needs: tuple[str, ...]) -> Any:
    """The method of `config.tokenizer_config` (None when unset), checked to have every attribute in `needs`."""
    if config.tokenizer_config is None:
        return None
    tokenizer = build_method(config.tokenizer_config)
    for name in needs:
        if not hasattr(tokenizer, name):
            raise ValueError(f"tokenizer_config.method={config.tokenizer_config.method!r} has no {name!r}")
    return tokenizer


def tokenizer_run(tokenizer: Any, section: str, workdir: str, step: int) -> dict[str, RunPart]:
    """`{"tokenizer": RunPart}` for the run `<section>.tokenizer_workdir`; {} without a tokenizer.

    `step` < 0 means the latest checkpoint.
    """
    if tokenizer is None:
        return {}
    if not workdir:
        raise ValueError(f"tokenizer_config is set but {section}.tokenizer_workdir is empty; expected a tokenizer run")
    return {"tokenizer": RunPart(f"{section}.tokenizer_workdir", workdir, None if step < 0 else step)}


def load_tokenizer(
    params: Params,
    runs: dict[str, LoadedRun],
    section: str,
    workdir: str,
    shape_of: Any,
    expected: tuple,
    built: Any,
) -> Params:
    """`params` with `params["tokenizer"]` replaced by the loaded run's (host-side).

    Args:
      shape_of: `tokenizer -> tuple`, what must agree with the config (vocab and grid, latent size ...).
      expected: that tuple for `tokenizer_config`.
      built: the tokenizer built from `tokenizer_config`; the run must be of its method.
    """
    config, tokenizer, loaded = runs["tokenizer"]
    if type(tokenizer) is not type(built):
        raise ValueError(
            f"{section}.tokenizer_workdir={workdir!r} holds a {config.method!r} run; tokenizer_config describes a "
            f"{type(built).__name__} run"
        )
    if shape_of(tokenizer) != expected:
        raise ValueError(
            f"{section}.tokenizer_workdir={workdir!r} has (vocab or channels, grid) {shape_of(tokenizer)}; "
            f"tokenizer_config expects {expected}"
        )
    if jax.tree.structure(loaded) != jax.tree.structure(params["tokenizer"]):
        raise ValueError(f"{section}.tokenizer_workdir={workdir!r}: its params do not match tokenizer_config")
    return {**params, "tokenizer": jax.device_get(loaded)}


def train_only(params: Params, names: tuple[str, ...]) -> Params:
    """Trainable flags: True for the parts in `names`, False for the rest (the tokenizer)."""
    return {part: jax.tree.map(lambda _, t=part in names: t, tree) for part, tree in params.items()}


__all__ = ["build_tokenizer", "load_tokenizer", "tokenizer_run", "train_only"]
