"""Export a trained workdir's checkpoint: `python -m mmjax export --workdir DIR --format F --out OUT`."""

from __future__ import annotations

import os

import jax

from mmjax.export.encoder import save_encoder
from mmjax.export.hf_vit import save_hf_vit
from mmjax.export.hf_vitmae import save_hf_vitmae
from mmjax.export.stablehlo import save_stablehlo
from mmjax.methods.mae import MAE
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
      ValueError: unknown format, or a method other than MAE.
      FileExistsError: `out` exists and `force` is False (checked before loading the checkpoint).
    """
    if format not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}, got {format!r}")
    if os.path.lexists(out) and not force:
        raise FileExistsError(f"export output {os.path.abspath(out)} already exists; pass --force to replace it")
    config, method, params = load_trained(os.fspath(workdir), step)
    if not isinstance(method, MAE):
        raise ValueError(f"export supports the 'mae' method; {workdir}/config.json has method={config.method!r}")
    params = jax.device_get(params)
    if format == "hf":
        return save_hf_vitmae(method, params, out, force)
    if format == "hf-vit":
        return save_hf_vit(method.model_config, params["encoder"], out, force)
    if format == "safetensors":
        return save_encoder(method.model_config, params["encoder"], out, force)
    return save_stablehlo(method.model_config, params["encoder"], out, pool=pool, force=force)
