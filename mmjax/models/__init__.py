"""Flax Linen modules, used only through `init` / `apply`."""

from mmjax.models.config import VIT_SIZES, DecoderConfig, ViTConfig, vit_config_from_section, vit_size
from mmjax.models.mae import MAEDecoder, MAEModel
from mmjax.models.simmim import SimMIMModel
from mmjax.models.transformer import MLP, EncoderBlock, MultiHeadAttention, TransformerStack
from mmjax.models.vit import ViTEncoder

__all__ = [
    "MLP",
    "VIT_SIZES",
    "DecoderConfig",
    "EncoderBlock",
    "MAEDecoder",
    "MAEModel",
    "MultiHeadAttention",
    "SimMIMModel",
    "TransformerStack",
    "ViTConfig",
    "ViTEncoder",
    "vit_config_from_section",
    "vit_size",
]
