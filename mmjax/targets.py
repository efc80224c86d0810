"""Prediction targets by name: `target.kind` in a method's config (pixels, normalized pixels, HOG, Fourier).

Each target is registered once (`TARGETS`) with what it fits (`image`: images `[B, H, W, C]`
cut into patch tokens), its argument declaration, a function
`(images, patch_size, args) -> float32 [B, N, D]` and its width `D`
(`target_dim(chosen, patch_size, channels)`), which the method's prediction head follows.
`values` says what a loss compares (`real` vectors here; tokenizer codes would be
`codes`), and `pixels=True` marks targets whose prediction can be pasted back as pixels
(`reconstruct`).

  pixels        the patch's raw pixels, `p_h * p_w * C` (SimMIM)
  norm_pixels   each patch normalized by its own mean and std, `p_h * p_w * C` (MAE's norm-pix)
  hog           MaskFeat's HOG per patch (`mmjax.ops.hog`), `(p/cell)^2 * C * bins`
  fourier       MFM-style spectrum of each patch: log amplitude and / or phase of its 2D FFT
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from mmjax.config import knob
from mmjax.losses import normalize_patches
from mmjax.ops.hog import HOG_KERNELS, hog_dim, hog_patches
from mmjax.ops.patches import as_pair, patchify
from mmjax.parts import Chosen, Parts

TARGETS = Parts("target", "target kind")


def _pixel_dim(patch_size, channels, args) -> int:
    ph, pw = as_pair(patch_size, "patch_size")
    return ph * pw * channels


@TARGETS.register("pixels", fits=("image",), values="real", pixels=True, dim=_pixel_dim)
def pixels(images: jax.Array, patch_size, args) -> jax.Array:
    """Raw pixels of each patch, `[B, N, p_h * p_w * C]`."""
    return patchify(images, patch_size).astype(jnp.float32)


@TARGETS.register("norm_pixels", fits=("image",), values="real", pixels=True, normalized=True, dim=_pixel_dim)
def norm_pixels(images: jax.Array, patch_size, args) -> jax.Array:
    """MAE's norm-pix target: each patch minus its mean over its std (`losses.normalize_patches`)."""
    return normalize_patches(patchify(images, patch_size))


@dataclasses.dataclass(frozen=True)
class HOGArgs:
    """`target.hog`: MaskFeat's HOG (the paper: 8 px cells, 9 bins; cells must divide the patch)."""

    cell: int = knob(8, "cell side in pixels; must divide the patch size (MNIST with 4 px patches: 4)", low=1)
    bins: int = knob(9, "unsigned orientation bins over 180 degrees", low=1)
    kernel: str = knob("sobel", "gradient filter: MaskFeat's sobel or central [-1, 0, 1]", choices=HOG_KERNELS)


def _hog_dim(patch_size, channels, args) -> int:
    return hog_dim(patch_size, channels, args.cell, args.bins)


@TARGETS.register("hog", fits=("image",), args=HOGArgs, values="real", pixels=False, dim=_hog_dim)
def hog(images: jax.Array, patch_size, args: HOGArgs) -> jax.Array:
    """MaskFeat: HOG of each patch's cells, L2-normalized per cell and channel, `[B, N, D_hog]`."""
    return hog_patches(images, patch_size, args.cell, args.bins, args.kernel)


FOURIER_PARTS = ("amplitude", "phase", "both")


@dataclasses.dataclass(frozen=True)
class FourierArgs:
    """`target.fourier`: the 2D spectrum of each patch and channel (MFM predicts the image spectrum)."""

    part: str = knob("amplitude", "log(1 + |F|), the phase angle, or both", choices=FOURIER_PARTS)


def _fourier_dim(patch_size, channels, args) -> int:
    return _pixel_dim(patch_size, channels, args) * (2 if args.part == "both" else 1)


@TARGETS.register("fourier", fits=("image",), args=FourierArgs, values="real", pixels=False, dim=_fourier_dim)
def fourier(images: jax.Array, patch_size, args: FourierArgs) -> jax.Array:
    """Per patch and channel `fft2`: `[B, N, p_h * p_w * C]` (x2 for `both`), ordered (row, col, channel)."""
    ph, pw = as_pair(patch_size, "patch_size")
    batch, height, width, channels = images.shape
    x = images.astype(jnp.float32).reshape(batch, height // ph, ph, width // pw, pw, channels)
    x = x.transpose(0, 1, 3, 2, 4, 5).reshape(batch, -1, ph, pw, channels)
    spectrum = jnp.fft.fft2(x, axes=(2, 3))
    amplitude = jnp.log1p(jnp.abs(spectrum)).reshape(batch, x.shape[1], -1)
    phase = jnp.angle(spectrum).reshape(batch, x.shape[1], -1)
    out = {"amplitude": amplitude, "phase": phase, "both": None}[args.part]
    return jnp.concatenate([amplitude, phase], axis=-1) if out is None else out


def target_dim(chosen: Chosen, patch_size, channels: int) -> int:
    """Width `D` of the chosen target for patches of `patch_size` with `channels`."""
    return chosen.part.fact("dim")(patch_size, channels, chosen.args)


def make_target(chosen: Chosen, images: jax.Array, patch_size) -> jax.Array:
    """The chosen target of `images` `[B, H, W, C]`: float32 `[B, N, D]`."""
    return chosen.part.fn(images, patch_size, chosen.args)


def target_section(default: str | None, fits: str = "image", **arg_overrides: dict):
    """The `target` ConfigDict: `kind=default` plus each fitting kind's args."""
    return TARGETS.section_config(default, fits, **arg_overrides)


__all__ = [
    "FOURIER_PARTS",
    "TARGETS",
    "FourierArgs",
    "HOGArgs",
    "fourier",
    "hog",
    "make_target",
    "norm_pixels",
    "pixels",
    "target_dim",
    "target_section",
]
