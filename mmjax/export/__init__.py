"""Weight conversion to and from other libraries, and export of trained encoders.

Import: `convert_hf_vitmae` / `load_hf_vitmae` (HF ViTMAE, 4.x and 5.x key names).
Export: `export_workdir` (the `python -m mmjax export` command), `save_hf_vitmae`,
`save_encoder` / `load_encoder` (safetensors + JSON), `save_stablehlo` /
`load_feature_extractor` (`jax.export`, symbolic batch size).
Every import checks every key and raises `CheckpointMismatchError` listing the problems.
"""

from mmjax.export.atomic import atomic_directory
from mmjax.export.encoder import encoder_features, load_encoder, save_encoder
from mmjax.export.hf_export import save_hf_vitmae
from mmjax.export.hf_vitmae import (
    config_from_hf,
    convert_hf_vitmae,
    hf_vitmae_config,
    load_hf_vitmae,
    normalize_key,
    to_hf_vitmae,
)
from mmjax.export.plan import CheckpointMismatchError
from mmjax.export.stablehlo import export_features, save_stablehlo
from mmjax.export.stablehlo_loader import load_feature_extractor
from mmjax.export.workdir import FORMATS, export_workdir

__all__ = [
    "FORMATS",
    "CheckpointMismatchError",
    "atomic_directory",
    "config_from_hf",
    "convert_hf_vitmae",
    "encoder_features",
    "export_features",
    "export_workdir",
    "hf_vitmae_config",
    "load_encoder",
    "load_feature_extractor",
    "load_hf_vitmae",
    "normalize_key",
    "save_encoder",
    "save_hf_vitmae",
    "save_stablehlo",
    "to_hf_vitmae",
]
