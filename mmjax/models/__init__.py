"""Flax Linen modules, used only through `init` / `apply`."""

from mmjax.models.bert import BERT_SIZES, BertConfig, BertMLM
from mmjax.models.config import VIT_SIZES, DecoderConfig, ViTConfig, vit_config_from_section, vit_section, vit_size
from mmjax.models.mae import MAEDecoder, MAEModel
from mmjax.models.simmim import SimMIMModel
from mmjax.models.token_mae import TokenDecoder, TokenEncoder
from mmjax.models.transformer import (
    MLP,
    REMAT_POLICIES,
    EncoderBlock,
    MultiHeadAttention,
    TransformerStack,
    stack_layers,
    unstack_layers,
)
from mmjax.models.vit import ViTEncoder

__all__ = [
    "BERT_SIZES",
    "BertConfig",
    "BertMLM",
    "MLP",
    "VIT_SIZES",
    "DecoderConfig",
    "EncoderBlock",
    "MAEDecoder",
    "MAEModel",
    "MultiHeadAttention",
    "SimMIMModel",
    "TokenDecoder",
    "TokenEncoder",
    "TransformerStack",
    "REMAT_POLICIES",
    "stack_layers",
    "unstack_layers",
    "ViTConfig",
    "ViTEncoder",
    "vit_config_from_section",
    "vit_section",
    "vit_size",
]
