"""Synthesized sounds of six known classes (bundled, no download).

Classes (`CLASSES`, label = index): a pure tone, an upward and a downward
exponential chirp, a burst of white noise, an amplitude-modulated tone and a
frequency-modulated tone. Every example draws its own parameters (frequencies,
modulation rates, onset, level) and adds faint white noise; example `i` of a split
is a pure function of `(seed, split, i)` and its label is `i % 6`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CLASSES = ("tone", "chirp_up", "chirp_down", "noise_burst", "am_tone", "fm_tone")
SPLIT_IDS = {"train": 0, "test": 1}


def synthesize(label: int, rng: np.random.Generator, num_samples: int, sample_rate: int) -> tuple[np.ndarray, dict]:
    """One float32 `[num_samples]` signal of class `label` and the parameters drawn for it."""
    t = np.arange(num_samples) / sample_rate
    nyquist = sample_rate / 2
    level = rng.uniform(0.3, 1.0)
    kind = CLASSES[label]
    params: dict[str, float] = {"level": level}
    if kind in ("tone", "am_tone", "fm_tone"):
        freq = float(np.exp(rng.uniform(np.log(150.0), np.log(0.75 * nyquist))))
        params["freq"] = freq
        phase = 2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)
        if kind == "fm_tone":
            rate, deviation = rng.uniform(3.0, 10.0), rng.uniform(0.1, 0.25) * freq + 60.0
            params.update(rate=rate, deviation=deviation)
            phase = phase + deviation / rate * np.sin(2 * np.pi * rate * t)
        signal = np.sin(phase)
        if kind == "am_tone":
            rate = rng.uniform(3.0, 12.0)
            params["rate"] = rate
            signal = signal * 0.5 * (1.0 + np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
    elif kind in ("chirp_up", "chirp_down"):
        low = float(np.exp(rng.uniform(np.log(150.0), np.log(0.15 * nyquist))))
        high = float(min(low * rng.uniform(4.0, 10.0), 0.9 * nyquist))
        start, end = (low, high) if kind == "chirp_up" else (high, low)
        params.update(start=start, end=end)
        duration = t[-1] if len(t) > 1 else 1.0
        growth = np.log(end / start) / duration  # f(t) = start * exp(growth t)
        signal = np.sin(2 * np.pi * start * np.expm1(growth * t) / growth + rng.uniform(0, 2 * np.pi))
    else:  # noise_burst
        length = int(rng.uniform(0.15, 0.5) * num_samples)
        onset = int(rng.integers(0, num_samples - length + 1))
        params.update(onset=onset, length=length)
        signal = np.zeros(num_samples)
        signal[onset : onset + length] = rng.normal(0.0, 0.5, length)
    signal = level * signal + rng.normal(0.0, 0.01, num_samples)
    return signal.astype(np.float32), params


class SynthAudioSource:
    """Random-access examples `{"audio": float32 [L], "label": int32}` (grain source protocol)."""

    def __init__(
        self,
        split: str = "train",
        num_examples: int = 3000,
        num_samples: int = 8320,
        sample_rate: int = 8000,
        seed: int = 0,
    ):
        if split not in SPLIT_IDS:
            raise ValueError(f"synth_audio split must be 'train' or 'test', got {split!r}")
        self.split, self.num_examples, self.num_samples = split, num_examples, num_samples
        self.sample_rate, self.seed = sample_rate, seed

    def __len__(self) -> int:
        return self.num_examples

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.num_examples:
            raise IndexError(f"example {index} out of range [0, {self.num_examples})")
        label = int(index % len(CLASSES))
        rng = np.random.default_rng((self.seed, SPLIT_IDS[self.split], int(index)))
        signal, _ = synthesize(label, rng, self.num_samples, self.sample_rate)
        return {"audio": signal, "label": np.int32(label)}

    def __repr__(self) -> str:
        return f"SynthAudioSource({self.split}, {self.num_examples} x {self.num_samples} samples)"
