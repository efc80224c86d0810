"""Weight conversion to and from other libraries, and export of trained encoders.

Import: `convert_hf_bert` / `to_hf_bert` (HF BertForMaskedLM, both ways), `convert_hf_vitmae` /
`load_hf_vitmae` (HF ViTMAE, 4.x and 5.x key names),
`convert_hf_simmim` / `to_hf_simmim` (HF ViTForMaskedImageModeling as SimMIM, both ways),
`convert_hf_beit` / `to_hf_beit` (HF BeitForMaskedImageModeling, both ways),
`convert_hf_data2vec_vision` / `to_hf_data2vec_vision` (HF Data2VecVisionModel <-> `ViTEncoder`),
`convert_hf_videomae` / `to_hf_videomae` / `load_hf_videomae` / `save_hf_videomae` (HF
VideoMAEForPreTraining, both ways), `convert_hf_patchtst` / `to_hf_patchtst` (HF
PatchTSTForPretraining, both ways),
`convert_hf_vit` / `load_hf_vit` (HF ViT) and `convert_timm_vit` (timm ViT) into a
`ViTEncoder`; `resize_encoder` moves a learned position table to another resolution.
Export: `export_workdir` (the `python -m mmjax export` command), `save_hf_vitmae`,
`save_encoder` / `load_encoder` (safetensors + JSON), `save_stablehlo` /
`load_feature_extractor` (`jax.export`, symbolic batch size); methods without a ViT encoder export
their `features` (`mmjax.export.features`, `save_feature_params` / `load_feature_params`).
Every import checks every key and raises `CheckpointMismatchError` listing the problems.
"""

from mmjax.export.atomic import atomic_directory
from mmjax.export.encoder import encoder_features, load_encoder, save_encoder
from mmjax.export.features import load_feature_params, save_feature_params
from mmjax.export.hf_beit import (
    beit_config_from_hf,
    convert_hf_beit,
    convert_hf_data2vec_vision,
    hf_beit_config,
    hf_data2vec_vision_config,
    to_hf_beit,
    to_hf_data2vec_vision,
)
from mmjax.export.hf_bert import bert_config_from_hf, convert_hf_bert, hf_bert_config, load_hf_bert, to_hf_bert
from mmjax.export.hf_patchtst import convert_hf_patchtst, hf_patchtst_config, patchtst_config_from_hf, to_hf_patchtst
from mmjax.export.hf_simmim import convert_hf_simmim, hf_simmim_config, simmim_config_from_hf, to_hf_simmim
from mmjax.export.hf_videomae import (
    convert_hf_videomae,
    hf_masked_predictions,
    hf_videomae_config,
    load_hf_videomae,
    mask_from_hf,
    save_hf_videomae,
    to_hf_videomae,
    videomae_config_from_hf,
)
from mmjax.export.hf_vit import convert_hf_vit, hf_vit_config, load_hf_vit, save_hf_vit, to_hf_vit, vit_config_from_hf
from mmjax.export.hf_vitmae import (
    config_from_hf,
    convert_hf_vitmae,
    hf_vitmae_config,
    load_hf_vitmae,
    normalize_key,
    save_hf_vitmae,
    to_hf_vitmae,
)
from mmjax.export.plan import CheckpointMismatchError
from mmjax.export.resolution import resize_encoder
from mmjax.export.stablehlo import export_features, save_stablehlo
from mmjax.export.stablehlo_loader import load_feature_extractor
from mmjax.export.timm_vit import convert_timm_vit, timm_vit_config
from mmjax.export.workdir import FORMATS, export_workdir

__all__ = [
    "bert_config_from_hf",
    "convert_hf_bert",
    "hf_bert_config",
    "load_hf_bert",
    "to_hf_bert",
    "simmim_config_from_hf",
    "to_hf_simmim",
    "FORMATS",
    "CheckpointMismatchError",
    "atomic_directory",
    "config_from_hf",
    "convert_hf_simmim",
    "convert_hf_vit",
    "convert_hf_vitmae",
    "convert_timm_vit",
    "encoder_features",
    "export_features",
    "export_workdir",
    "load_feature_params",
    "save_feature_params",
    "hf_simmim_config",
    "hf_vit_config",
    "hf_vitmae_config",
    "load_encoder",
    "load_feature_extractor",
    "load_hf_vit",
    "load_hf_vitmae",
    "normalize_key",
    "resize_encoder",
    "save_encoder",
    "save_hf_vit",
    "save_hf_vitmae",
    "save_stablehlo",
    "timm_vit_config",
    "to_hf_vit",
    "to_hf_vitmae",
    "vit_config_from_hf",
    "convert_hf_patchtst",
    "hf_patchtst_config",
    "patchtst_config_from_hf",
    "to_hf_patchtst",
    "convert_hf_videomae",
    "hf_masked_predictions",
    "hf_videomae_config",
    "load_hf_videomae",
    "mask_from_hf",
    "save_hf_videomae",
    "to_hf_videomae",
    "videomae_config_from_hf",
    "beit_config_from_hf",
    "convert_hf_beit",
    "convert_hf_data2vec_vision",
    "hf_beit_config",
    "hf_data2vec_vision_config",
    "to_hf_beit",
    "to_hf_data2vec_vision",
]
