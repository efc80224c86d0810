"""Flax Linen modules, used only through `init` / `apply`."""

from mmjax.models import quantizers
from mmjax.models.beit import BEiTModel
from mmjax.models.bert import BERT_SIZES, BertConfig, BertMLM
from mmjax.models.config import (
    VIT_SIZES,
    AttentionOption,
    DecoderConfig,
    TransformerConfig,
    ViTConfig,
    transformer_config,
    vit_config_from_section,
    vit_section,
    vit_size,
)
from mmjax.models.diffusion_head import DiffusionHead
from mmjax.models.gmm_head import GMMHead
from mmjax.models.grid_mae import GridDecoderConfig, GridEncoderConfig, GridMAEModel
from mmjax.models.latent_transformer import LAYOUTS, LatentTransformer
from mmjax.models.mae import MAEDecoder, MAEModel
from mmjax.models.patchtst import PatchTSTModel
from mmjax.models.pointmae import CenterEmbedding, MiniPointNet, PointMAEModel
from mmjax.models.simmim import SimMIMModel
from mmjax.models.table_mae import TableMAE
from mmjax.models.timesbert import TimesBERTModel
from mmjax.models.token_mae import TokenDecoder, TokenEncoder
from mmjax.models.tokenizer import TokenizerModel
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
    "BEiTModel",
    "BERT_SIZES",
    "BertConfig",
    "BertMLM",
    "MLP",
    "VIT_SIZES",
    "CenterEmbedding",
    "DecoderConfig",
    "DiffusionHead",
    "GMMHead",
    "LAYOUTS",
    "LatentTransformer",
    "EncoderBlock",
    "GridDecoderConfig",
    "GridEncoderConfig",
    "GridMAEModel",
    "MAEDecoder",
    "MAEModel",
    "MiniPointNet",
    "MultiHeadAttention",
    "PatchTSTModel",
    "PointMAEModel",
    "SimMIMModel",
    "TableMAE",
    "TimesBERTModel",
    "TokenDecoder",
    "TokenEncoder",
    "TokenizerModel",
    "TransformerConfig",
    "TransformerStack",
    "AttentionOption",
    "transformer_config",
    "REMAT_POLICIES",
    "quantizers",
    "stack_layers",
    "unstack_layers",
    "ViTConfig",
    "ViTEncoder",
    "vit_config_from_section",
    "vit_section",
    "vit_size",
]
