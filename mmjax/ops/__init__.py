"""Array operations shared by models: patches, position embeddings, attention and its masks, series patches,
point distances, Gaussian mixtures and diffusion."""

from mmjax.ops.attention import IMPLEMENTATIONS as ATTENTION_IMPLEMENTATIONS
from mmjax.ops.attention import attention, attention_mask, choose_impl
from mmjax.ops.attention_masks import (
    ATTENTION_MASKS,
    block_causal_mask,
    build_attention_mask,
    causal_mask,
    hybrid_mask,
)
from mmjax.ops.audio import log_mel_spectrogram, mel_filterbank, power_spectrogram
from mmjax.ops.diffusion import (
    NOISE_SCHEDULES,
    NoiseSchedule,
    ddpm_sample,
    diffusion_loss,
    diffusion_loss_at,
    noise_schedule,
    q_sample,
    respace,
)
from mmjax.ops.gmm import GMM, gmm_guided_sample, gmm_log_prob, gmm_nll, gmm_output_dim, gmm_sample, split_gmm
from mmjax.ops.patches import as_pair, grid_shape, patchify, unpatchify
from mmjax.ops.pointcloud import chamfer_distance
from mmjax.ops.posemb import sincos_1d, sincos_2d
from mmjax.ops.series import denormalize_series, instance_stats, normalize_series, patch_series, unpatch_series
from mmjax.ops.tubelets import sincos_3d, tubelet_grid, tubeletify, untubeletify

__all__ = [
    "ATTENTION_IMPLEMENTATIONS",
    "GMM",
    "NOISE_SCHEDULES",
    "NoiseSchedule",
    "ddpm_sample",
    "diffusion_loss",
    "diffusion_loss_at",
    "gmm_guided_sample",
    "gmm_log_prob",
    "gmm_nll",
    "gmm_output_dim",
    "gmm_sample",
    "noise_schedule",
    "q_sample",
    "respace",
    "split_gmm",
    "ATTENTION_MASKS",
    "as_pair",
    "attention",
    "attention_mask",
    "block_causal_mask",
    "build_attention_mask",
    "causal_mask",
    "chamfer_distance",
    "choose_impl",
    "denormalize_series",
    "grid_shape",
    "hybrid_mask",
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
