"""Array operations shared by models: patches, position embeddings, attention, series patches, point distances."""

from mmjax.ops.attention import IMPLEMENTATIONS as ATTENTION_IMPLEMENTATIONS
from mmjax.ops.attention import attention, attention_mask, choose_impl
from mmjax.ops.audio import log_mel_spectrogram, mel_filterbank, power_spectrogram
from mmjax.ops.patches import as_pair, grid_shape, patchify, unpatchify
from mmjax.ops.pointcloud import chamfer_distance
from mmjax.ops.posemb import sincos_1d, sincos_2d
from mmjax.ops.series import denormalize_series, instance_stats, normalize_series, patch_series, unpatch_series
from mmjax.ops.tubelets import sincos_3d, tubelet_grid, tubeletify, untubeletify

__all__ = [
    "ATTENTION_IMPLEMENTATIONS",
    "as_pair",
    "attention",
    "attention_mask",
    "chamfer_distance",
    "choose_impl",
    "denormalize_series",
    "grid_shape",
    "instance_stats",
    "normalize_series",
    "patch_series",
    "log_mel_spectrogram",
    "mel_filterbank",
    "patchify",
    "power_spectrogram",
    "sincos_1d",
    "sincos_2d",
    "unpatch_series",
    "sincos_3d",
    "tubelet_grid",
    "tubeletify",
    "unpatchify",
    "untubeletify",
]
