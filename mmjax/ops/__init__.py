"""Array operations shared by models: patches, position embeddings, attention."""

from mmjax.ops.attention import IMPLEMENTATIONS as ATTENTION_IMPLEMENTATIONS
from mmjax.ops.attention import attention, attention_mask, choose_impl
from mmjax.ops.audio import log_mel_spectrogram, mel_filterbank, power_spectrogram
from mmjax.ops.patches import as_pair, grid_shape, patchify, unpatchify
from mmjax.ops.posemb import sincos_1d, sincos_2d
from mmjax.ops.tubelets import sincos_3d, tubelet_grid, tubeletify, untubeletify

__all__ = [
    "ATTENTION_IMPLEMENTATIONS",
    "as_pair",
    "attention",
    "attention_mask",
    "choose_impl",
    "grid_shape",
    "log_mel_spectrogram",
    "mel_filterbank",
    "patchify",
    "power_spectrogram",
    "sincos_1d",
    "sincos_2d",
    "sincos_3d",
    "tubelet_grid",
    "tubeletify",
    "unpatchify",
    "untubeletify",
]
