"""Array operations shared by models: patches, position embeddings, attention."""

from mmjax.ops.attention import IMPLEMENTATIONS as ATTENTION_IMPLEMENTATIONS
from mmjax.ops.attention import attention, attention_mask, choose_impl
from mmjax.ops.patches import as_pair, grid_shape, patchify, unpatchify
from mmjax.ops.posemb import sincos_1d, sincos_2d

__all__ = [
    "ATTENTION_IMPLEMENTATIONS",
    "as_pair",
    "attention",
    "attention_mask",
    "choose_impl",
    "grid_shape",
    "patchify",
    "sincos_1d",
    "sincos_2d",
    "unpatchify",
]
