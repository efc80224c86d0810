"""Moving digits: deterministic clips of two bouncing MNIST digits of one class (bundled, no download).

Each clip shows two different MNIST images of the same digit class, shrunk to
`digit_size` pixels, moving in straight lines at 1-3 pixels per frame and bouncing
off the frame edges; overlapping digits combine by maximum. The clip label is the
digit class (0-9): a probe must recognize the digit shape under motion and overlap,
so it needs the encoder. Clip `i` of a split is a pure function of `(seed, split, i)`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from mmjax.data.sources import mnist_source

SPLIT_IDS = {"train": 0, "test": 1}


def shrink_digits(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 `[N, 28, 28]` -> `[N, size, size]` by area averaging (PIL box filter)."""
    from PIL import Image

    out = [np.asarray(Image.fromarray(im).resize((size, size), Image.BOX)) for im in images]
    return np.stack(out).astype(np.uint8)


@functools.lru_cache(maxsize=4)
def split_digits(split: str, digit_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The bundled MNIST `split` shrunk to `[N, digit_size, digit_size]` uint8, and its labels (cached)."""
    mnist = mnist_source(split)
    return shrink_digits(mnist.images[..., 0], digit_size), mnist.labels


def bounce_path(start: float, velocity: float, frames: int, limit: float) -> np.ndarray:
    """Integer positions of a point moving at `velocity` per frame, reflected into `[0, limit]`."""
    positions, pos = [], start
    for _ in range(frames):
        positions.append(int(round(pos)))
        pos += velocity
        if pos < 0:
            pos, velocity = -pos, -velocity
        elif pos > limit:
            pos, velocity = 2 * limit - pos, -velocity
    return np.asarray(positions)


class MovingDigitsSource:
    """Random-access clips `{"video": uint8 [T, S, S, 1], "label": int32}` (grain source protocol).

    Args:
      split: "train" or "test"; each draws its digits from that split of the bundled MNIST.
      num_clips: clips in the split.
      frames: T.
      size: S, the frame side in pixels.
      digit_size: side of each digit after shrinking.
      seed: clip randomness.
    """

    def __init__(
        self,
        split: str = "train",
        num_clips: int = 4000,
        frames: int = 8,
        size: int = 32,
        digit_size: int = 14,
        seed: int = 0,
    ):
        if split not in SPLIT_IDS:
            raise ValueError(f"moving_digits split must be 'train' or 'test', got {split!r}")
        if not 0 < digit_size <= size:
            raise ValueError(f"data.digit_size={digit_size} must be in (0, data.image_size={size}]")
        self.digits, labels = split_digits(split, digit_size)
        self.by_class = [np.flatnonzero(labels == c) for c in range(10)]
        self.split, self.num_clips, self.frames, self.size = split, num_clips, frames, size
        self.digit_size, self.seed = digit_size, seed

    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.num_clips:
            raise IndexError(f"clip {index} out of range [0, {self.num_clips})")
        rng = np.random.default_rng((self.seed, SPLIT_IDS[self.split], int(index)))
        label = int(index % 10)
        picks = rng.choice(self.by_class[label], size=2, replace=False)
        limit = self.size - self.digit_size
        video = np.zeros((self.frames, self.size, self.size), np.uint8)
        for pick in picks:
            angle, speed = rng.uniform(0, 2 * np.pi), rng.uniform(1.0, 3.0)
            rows = bounce_path(rng.uniform(0, limit), speed * np.sin(angle), self.frames, limit)
            cols = bounce_path(rng.uniform(0, limit), speed * np.cos(angle), self.frames, limit)
            for t in range(self.frames):
                window = video[t, rows[t] : rows[t] + self.digit_size, cols[t] : cols[t] + self.digit_size]
                np.maximum(window, self.digits[pick], out=window)
        return {"video": video[..., None], "label": np.int32(label)}

    def __repr__(self) -> str:
        return f"MovingDigitsSource({self.split}, {self.num_clips} x {self.frames}x{self.size}x{self.size})"
