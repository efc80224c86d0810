"""Masks for signals: spectrogram time/frequency masks, Fourier-domain image masks, multivariate series."""

from __future__ import annotations

from functools import partial

import flax.struct
import jax
import jax.numpy as jnp

from mmjax.masking.dense import select_lowest, with_indices
from mmjax.masking.mask import Mask, num_visible_tokens


@partial(jax.jit, static_argnames=("batch_size", "grid", "time_ratio", "freq_ratio"))
def time_frequency_mask(
    key: jax.Array,
    batch_size: int,
    grid: tuple[int, int],
    time_ratio: float = 0.2,
    freq_ratio: float = 0.2,
) -> Mask:
    """Audio-MAE time and frequency masking (Huang et al. 2022): hide whole time columns and frequency rows.

    Over a spectrogram patch grid `(T, F)` (flattened time-major), `int(time_ratio * T)`
    time positions and `int(freq_ratio * F)` frequency positions are hidden across the
    other axis. Every example hides exactly `nt F + nf T - nt nf` tokens. Set one ratio
    to 0 for pure time or pure frequency masking; random patches are `random_mask`.

    Args:
      key: PRNG key.
      batch_size: B.
      grid: `(T, F)` patches; N = T * F.
      time_ratio, freq_ratio: fractions of time and frequency positions hidden.

    Returns:
      Mask with `mask` `[B, T * F]`, `ids_keep`, `ids_restore`.
    """
    time, freq = grid
    for name, ratio in [("time_ratio", time_ratio), ("freq_ratio", freq_ratio)]:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {ratio}")
    nt, nf = int(time_ratio * time), int(freq_ratio * freq)
    k_time, k_freq = jax.random.split(key)
    times = select_lowest(jax.random.uniform(k_time, (batch_size, time)), None, nt)
    freqs = select_lowest(jax.random.uniform(k_freq, (batch_size, freq)), None, nf)
    hidden = (times[:, :, None] | freqs[:, None, :]).reshape(batch_size, time * freq)
    return with_indices(hidden, (time - nt) * (freq - nf))


@partial(
    jax.jit,
    static_argnames=(
        "batch_size",
        "grid",
        "num_time_bands",
        "max_time_width",
        "num_freq_bands",
        "max_freq_width",
    ),
)
def spec_band_mask(
    key: jax.Array,
    batch_size: int,
    grid: tuple[int, int],
    *,
    num_time_bands: int = 2,
    max_time_width: int = 4,
    num_freq_bands: int = 2,
    max_freq_width: int = 2,
) -> Mask:
    """SpecAugment-style bands (Park et al. 2019): contiguous time and frequency bands of random width.

    Each band's width is uniform in `[0, max_width]` and its start uniform in
    `[0, size - width]`; bands may overlap, so the count varies.

    Args:
      key: PRNG key.
      batch_size: B.
      grid: `(T, F)`; N = T * F, flattened time-major.
      num_time_bands, max_time_width: time bands.
      num_freq_bands, max_freq_width: frequency bands.

    Returns:
      Mask with `mask` bool `[B, T * F]`.
    """
    time, freq = grid
    if max_time_width > time or max_freq_width > freq:
        raise ValueError(f"band widths ({max_time_width}, {max_freq_width}) must fit the grid {grid}")
    k_time, k_freq = jax.random.split(key)

    def bands(k, size, count, max_width):
        kw, ks = jax.random.split(k)
        width = jax.random.randint(kw, (batch_size, count, 1), 0, max_width + 1)
        start = jnp.floor(jax.random.uniform(ks, (batch_size, count, 1)) * (size - width + 1)).astype(jnp.int32)
        pos = jnp.arange(size)[None, None]
        return jnp.any((pos >= start) & (pos < start + width), axis=1)

    hidden = (
        bands(k_time, time, num_time_bands, max_time_width)[:, :, None]
        | bands(k_freq, freq, num_freq_bands, max_freq_width)[:, None, :]
    )
    return Mask(mask=hidden.reshape(batch_size, time * freq))


@flax.struct.dataclass
class FrequencyMask:
    """Which Fourier coefficients of an image are removed.

    Attributes:
      removed: bool `[B, H, W]` over the centered spectrum (see `image_spectrum`),
        True = coefficient set to zero.
      low_pass: bool `[B]`, True where the filter keeps the low frequencies.
    """

    removed: jax.Array
    low_pass: jax.Array


def image_spectrum(images: jax.Array) -> jax.Array:
    """Centered 2-D Fourier transform of `[B, H, W, C]` images (zero frequency at `(H // 2, W // 2)`)."""
    return jnp.fft.fftshift(jnp.fft.fft2(images, axes=(1, 2)), axes=(1, 2))


def image_from_spectrum(spectrum: jax.Array) -> jax.Array:
    """The real images `[B, H, W, C]` of a centered spectrum (inverse of `image_spectrum`)."""
    return jnp.real(jnp.fft.ifft2(jnp.fft.ifftshift(spectrum, axes=(1, 2)), axes=(1, 2)))


@partial(jax.jit, static_argnames=("batch_size", "size", "radius", "low_pass_prob"))
def frequency_mask(
    key: jax.Array,
    batch_size: int,
    size: tuple[int, int],
    *,
    radius: float = 16.0,
    low_pass_prob: float = 0.5,
) -> FrequencyMask:
    """MFM frequency masking (Xie et al. 2023, "Masked Frequency Modeling"): a low- or high-pass filter.

    A circle of `radius` around the center of the shifted spectrum separates low from
    high frequencies; each example keeps the low frequencies (low-pass: high ones
    removed) with probability `low_pass_prob`, else the high ones. The paper uses
    radius 16 at 224 px.

    Args:
      key: PRNG key.
      batch_size: B.
      size: image `(H, W)`.
      radius: in frequency-grid units.
      low_pass_prob: probability of the low-pass filter.

    Returns:
      FrequencyMask with `removed` `[B, H, W]` and `low_pass` `[B]`.
    """
    height, width = size
    rows = jnp.arange(height)[:, None] - height // 2
    cols = jnp.arange(width)[None, :] - width // 2
    inside = rows**2 + cols**2 <= radius**2
    low_pass = jax.random.bernoulli(key, low_pass_prob, (batch_size,))
    removed = jnp.where(low_pass[:, None, None], ~inside, inside)
    return FrequencyMask(removed=removed, low_pass=low_pass)


def apply_frequency_mask(images: jax.Array, mask: FrequencyMask) -> jax.Array:
    """Zero the removed Fourier coefficients of `[B, H, W, C]` images and return the filtered images."""
    spectrum = image_spectrum(images)
    spectrum = jnp.where(mask.removed[..., None], 0, spectrum)
    return image_from_spectrum(spectrum).astype(images.dtype)


@partial(jax.jit, static_argnames=("batch_size", "num_variates", "num_patches", "mask_ratio", "shared"))
def variate_patch_mask(
    key: jax.Array,
    batch_size: int,
    num_variates: int,
    num_patches: int,
    mask_ratio: float = 0.4,
    *,
    shared: bool = False,
) -> Mask:
    """Per-variate patch masking of multivariate time series (PatchTST, Nie et al. 2023).

    Each variate (channel) hides `P - int(P * (1 - mask_ratio))` of its P patches,
    independently (channel-independent PatchTST) or at the same times for all variates
    (`shared=True`). Tokens are flattened variate-major, N = C * P; `ids_keep` lists
    each variate's visible tokens in turn, so `ids_keep.reshape(B, C, K)` groups them.

    Args:
      key: PRNG key.
      batch_size: B.
      num_variates: C.
      num_patches: P per variate.
      mask_ratio: fraction of patches hidden per variate (0.4 in PatchTST).
      shared: one time mask for all variates.

    Returns:
      Mask with `mask` `[B, C * P]`, `ids_keep` `[B, C * K]`, `ids_restore`.
    """
    keep = num_visible_tokens(num_patches, mask_ratio)
    rows = 1 if shared else num_variates
    noise = jax.random.uniform(key, (batch_size * rows, num_patches))
    hidden = ~select_lowest(noise, None, keep)
    hidden = jnp.broadcast_to(hidden.reshape(batch_size, rows, num_patches), (batch_size, num_variates, num_patches))
    return with_indices(hidden.reshape(batch_size, -1), num_variates * keep)
