"""Export a trained workdir's checkpoint: `python -m mmjax export --workdir DIR --format F --out OUT`."""

from __future__ import annotations

import os

import jax

from mmjax.export.encoder import encoder_param_shapes, save_encoder
from mmjax.export.hf_vit import save_hf_vit
from mmjax.export.hf_vitmae import save_hf_vitmae
from mmjax.export.stablehlo import save_stablehlo
from mmjax.methods.common import has_image_encoder
from mmjax.methods.mae import MAE
from mmjax.models.config import ViTConfig
from mmjax.models.vit import has_cls_token
from mmjax.train.loop import load_trained

FORMATS = ("hf", "hf-vit", "safetensors", "stablehlo")


def export_workdir(
    workdir: str | os.PathLike,
    format: str,
    out: str | os.PathLike,
    step: int | None = None,
    force: bool = False,
    pool: str = "cls",
) -> str:
    """Export the checkpoint at `step` (latest by default) of a training workdir.

    Formats:
      `hf`: `config.json` + `model.safetensors` for `transformers.ViTMAEForPreTraining.from_pretrained`.
      `hf-vit`: the encoder alone for `transformers.ViTModel.from_pretrained(out, add_pooling_layer=False)`.
      `safetensors`: the encoder's params + `config.json`, read back by `mmjax.export.load_encoder`.
      `stablehlo`: `jax.export` feature extractor (`pool` picks cls / mean / tokens) with a symbolic
        batch size, its params, and `load.py`, run by `load_feature_extractor` without model code.

    Every format is written to a temporary directory and renamed to `out` at the end.

    Raises:
      ValueError: unknown format; `hf` for a method other than MAE; a method without an `encoder`
        hook (the `ViTEncoder` its features come from).
      FileExistsError: `out` exists and `force` is False (checked before loading the checkpoint).
    """
    if format not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}, got {format!r}")
    if os.path.lexists(out) and not force:
        raise FileExistsError(f"export output {os.path.abspath(out)} already exists; pass --force to replace it")
    config, method, params = load_trained(os.fspath(workdir), step)
    if format == "hf" and not isinstance(method, MAE):
        raise ValueError(
            f"--format hf writes ViTMAEForPreTraining, for the 'mae' method; {workdir} has method={config.method!r} "
            "(--format hf-vit, safetensors or stablehlo write its encoder)"
        )
    if not has_image_encoder(method):
        raise ValueError(f"export: the {config.method!r} method of {workdir} has no ViT encoder to export yet")
    params = jax.device_get(params)
    if format == "hf":
        return save_hf_vitmae(method, params, out, force)
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
