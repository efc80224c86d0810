"""Export a trained workdir's checkpoint: `python -m mmjax export --workdir DIR --format F --out OUT`."""

from __future__ import annotations

import inspect
import os
from typing import Any

import jax

from mmjax.export.encoder import encoder_param_shapes, save_encoder
from mmjax.export.features import export_method_features, save_feature_params
from mmjax.export.hf_bert import save_hf_bert
from mmjax.export.hf_videomae import save_hf_videomae
from mmjax.export.hf_vit import save_hf_vit
from mmjax.export.hf_vitmae import save_hf_vitmae
from mmjax.export.stablehlo import DEFAULT_PLATFORMS, save_stablehlo, write_stablehlo
from mmjax.methods.common import has_feature_function, has_image_encoder
from mmjax.methods.mae import MAE
from mmjax.methods.mlm import MLM
from mmjax.methods.videomae import VideoMAE
from mmjax.models.config import ViTConfig
from mmjax.models.vit import has_cls_token
from mmjax.train.loop import load_trained

FORMATS = ("hf", "hf-vit", "safetensors", "stablehlo")
# `--format hf`: the method class -> its writer `(method, params, out, force) -> out`.
HF_WRITERS = {MAE: save_hf_vitmae, VideoMAE: save_hf_videomae, MLM: save_hf_bert}


def export_workdir(
    workdir: str | os.PathLike,
    format: str,
    out: str | os.PathLike,
    step: int | None = None,
    force: bool = False,
    pool: str | None = None,
) -> str:
    """Export the checkpoint at `step` (latest by default) of a training workdir.

    Formats:
      `hf`: `config.json` + `model.safetensors` for `transformers.ViTMAEForPreTraining` (an MAE run),
        `VideoMAEForPreTraining` (a VideoMAE run) or `BertForMaskedLM` (an MLM run) `.from_pretrained`.
      `hf-vit`: the encoder alone for `transformers.ViTModel.from_pretrained(out, add_pooling_layer=False)`.
      `safetensors`: a ViT encoder's params + `config.json`, read back by `mmjax.export.load_encoder`;
        for a method without one, the params its `features` read + the run's config
        (`mmjax.export.load_feature_params`).
      `stablehlo`: `jax.export` feature extractor (`pool` picks cls / mean / tokens) with a symbolic
        batch size, its params, and `load.py`, run by `load_feature_extractor` without model code.
        A method without a ViT encoder exports its `features` over its prepared input.

    `pool` defaults to `cls` for a ViT encoder and to the method's own `features` default otherwise.
    Every format is written to a temporary directory and renamed to `out` at the end.

    Raises:
      ValueError: unknown format; `hf` for a method other than MAE, VideoMAE and MLM; `hf-vit` without
        a ViT encoder with a cls token; a method with neither an `encoder` hook nor `features`.
      FileExistsError: `out` exists and `force` is False (checked before loading the checkpoint).
    """
    if format not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}, got {format!r}")
    if os.path.lexists(out) and not force:
        raise FileExistsError(f"export output {os.path.abspath(out)} already exists; pass --force to replace it")
    config, method, params = load_trained(os.fspath(workdir), step)
    params = jax.device_get(params)
    if format == "hf":
        writer = next((write for kind, write in HF_WRITERS.items() if isinstance(method, kind)), None)
        if writer is None:
            raise ValueError(
                f"--format hf writes ViTMAEForPreTraining, VideoMAEForPreTraining or BertForMaskedLM, for the 'mae', "
                f"'videomae' and 'mlm' methods; {workdir} has method={config.method!r} (--format safetensors or "
                "stablehlo write it)"
            )
        return writer(method, params, out, force)
    if has_image_encoder(method):
        return export_image_encoder(config, method, params, format, out, force, pool or "cls", workdir)
    if format == "hf-vit" or not has_feature_function(method):
        raise ValueError(
            f"export --format {format}: the {config.method!r} method of {workdir} has no ViT encoder"
            + ("" if format == "hf-vit" else " and no features function to export yet")
        )
    pool = pool or inspect.signature(method.features).parameters["pool"].default
    exported, flat, example = export_method_features(config, method, params, pool, DEFAULT_PLATFORMS)
    if format == "stablehlo":
        return write_stablehlo(exported, flat, example, pool, out, force)
    return save_feature_params(config, flat, out, force)


def export_image_encoder(
    config: Any, method: Any, params: Any, format: str, out: str | os.PathLike, force: bool, pool: str, workdir: Any
) -> str:
    """`hf-vit`, `safetensors` or `stablehlo` of a method's `encoder` hook (a `ViTEncoder`)."""
    model_config, encoder = method.encoder(params)
    encoder = encoder_only(model_config, encoder)
    if format == "hf-vit":
        if not has_cls_token(encoder):
            raise ValueError(
                f"--format hf-vit: HF ViTModel has a cls token and the {config.method!r} encoder of {workdir} has "
                "none (--format safetensors or stablehlo write it)"
            )
        return save_hf_vit(model_config, encoder, out, force)
    if format == "safetensors":
        return save_encoder(model_config, encoder, out, force)
    return save_stablehlo(model_config, encoder, out, pool=pool, force=force)


def encoder_only(config: ViTConfig, params: dict) -> dict:
    """`params` without what training alone uses (the mask token of an encoder that took hidden patches)."""
    declared = encoder_param_shapes(config, has_cls_token(params))
    return {k: v for k, v in params.items() if any(name == k or name.startswith(f"{k}/") for name in declared)}
