"""Log-mel spectrograms in JAX: framing, Hann-windowed STFT power, HTK mel filterbank, log.

The filterbank matches `torchaudio.functional.melscale_fbanks(..., norm=None,
mel_scale="htk")` (triangles on the HTK mel scale `2595 log10(1 + f / 700)`, peak 1,
no area normalization), the convention Audio-MAE's Kaldi-style features also use.
Frames are taken without centering or padding: `1 + (L - n_fft) // hop` of them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def hann_window(length: int) -> np.ndarray:
    """Periodic Hann window `0.5 - 0.5 cos(2 pi n / length)` (torch's default), float32 `[length]`."""
    n = np.arange(length, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)).astype(np.float32)


def num_frames(num_samples: int, n_fft: int, hop: int) -> int:
    """Frames of a `num_samples` signal (no centering)."""
    if num_samples < n_fft or hop <= 0:
        raise ValueError(f"a signal of {num_samples} samples has no frame of n_fft={n_fft} at hop={hop}")
    return 1 + (num_samples - n_fft) // hop


def frame_signal(signals: jax.Array, frame_length: int, hop: int) -> jax.Array:
    """`[B, L]` -> overlapping frames `[B, F, frame_length]`, `F = 1 + (L - frame_length) // hop`."""
    count = num_frames(signals.shape[-1], frame_length, hop)
    index = hop * np.arange(count)[:, None] + np.arange(frame_length)[None, :]
    return signals[..., index]


def power_spectrogram(signals: jax.Array, n_fft: int, hop: int) -> jax.Array:
    """Hann-windowed STFT power `|rfft(frame * window)|^2`: `[B, L]` -> float32 `[B, F, n_fft // 2 + 1]`."""
    frames = frame_signal(signals.astype(jnp.float32), n_fft, hop) * hann_window(n_fft)
    spectrum = jnp.fft.rfft(frames, axis=-1)
    return jnp.square(jnp.real(spectrum)) + jnp.square(jnp.imag(spectrum))


def hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """HTK mel scale: `2595 log10(1 + f / 700)`."""
    return 2595.0 * np.log10(1.0 + np.asarray(freq, np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of `hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def mel_filterbank(num_freqs: int, num_mels: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None):
    """Triangular HTK mel filters, float32 `[num_freqs, num_mels]` (a constant, computed in NumPy).

    Filter m rises linearly from mel point m to m + 1 and falls to m + 2, where the
    `num_mels + 2` points are evenly spaced in mel between `f_min` and `f_max` (default
    Nyquist); bin k of the `num_freqs` STFT bins sits at `k * (sample_rate / 2) / (num_freqs - 1)` Hz.
    """
    f_max = sample_rate / 2.0 if f_max is None else f_max
    if not 0.0 <= f_min < f_max <= sample_rate / 2.0:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min}, f_max={f_max}")
    bins = np.linspace(0.0, sample_rate / 2.0, num_freqs)
    points = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), num_mels + 2))
    widths = np.diff(points)  # [num_mels + 1]
    offsets = points[None, :] - bins[:, None]  # [num_freqs, num_mels + 2]
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def log_mel_spectrogram(
    signals: jax.Array,
    sample_rate: int,
    n_fft: int,
    hop: int,
    num_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    eps: float = 1e-6,
) -> jax.Array:
    """`log(power_spectrogram @ mel_filterbank + eps)`.

    Args:
      signals: `[B, L]` waveforms.
      sample_rate: Hz.
      n_fft: window and FFT length; hop: samples between frames.
      num_mels: mel bands; f_min, f_max: their range in Hz (default 0 to Nyquist).
      eps: added before the log.

    Returns:
      float32 `[B, F, num_mels]`, time first, `F = 1 + (L - n_fft) // hop`.
    """
    filters = mel_filterbank(n_fft // 2 + 1, num_mels, sample_rate, f_min, f_max)
    mel = jnp.einsum("bfk,km->bfm", power_spectrogram(signals, n_fft, hop), filters)
    return jnp.log(mel + eps)
