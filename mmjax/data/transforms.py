"""Per-example image transforms (numpy / PIL, on the host) and on-device normalization."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    squeeze = image.shape[-1] == 1
    pil = Image.fromarray(image[..., 0] if squeeze else image)
    out = np.asarray(pil.resize((size[1], size[0]), Image.BICUBIC), dtype=np.uint8)
    return out[..., None] if squeeze else out


def resize_center_crop(image: np.ndarray, size: tuple[int, int], crop_fraction: float = 0.875) -> np.ndarray:
    """Evaluation view: resize the shorter side to `size / crop_fraction`, then center-crop `size`."""
    h, w = image.shape[:2]
    if (h, w) == tuple(size):
        return image
    target = max(size) / crop_fraction
    scale = target / min(h, w)
    resized = _resize(image, (max(size[0], round(h * scale)), max(size[1], round(w * scale))))
    top = (resized.shape[0] - size[0]) // 2
    left = (resized.shape[1] - size[1]) // 2
    return resized[top : top + size[0], left : left + size[1]]


def random_resized_crop(
    image: np.ndarray,
    size: tuple[int, int],
    rng: np.random.Generator,
    scale: Sequence[float] = (0.2, 1.0),
    ratio: Sequence[float] = (3 / 4, 4 / 3),
) -> np.ndarray:
    """Inception-style crop (torchvision `RandomResizedCrop` rule): area fraction in `scale`,
    log-uniform aspect ratio in `ratio`, 10 tries, then a center crop fallback."""
    h, w = image.shape[:2]
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        cw = round(math.sqrt(target_area * aspect))
        ch = round(math.sqrt(target_area / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(rng.integers(0, h - ch + 1))
            left = int(rng.integers(0, w - cw + 1))
            return _resize(image[top : top + ch, left : left + cw], size)
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, round(w / ratio[0])
    elif in_ratio > ratio[1]:
        ch, cw = h, round(h * ratio[1])
    else:
        cw, ch = w, h
    top, left = (h - ch) // 2, (w - cw) // 2
    return _resize(image[top : top + ch, left : left + cw], size)


class TrainAugment:
    """`RandomResizedCrop` + horizontal flip (MAE pretraining), or identity when disabled."""

    def __init__(self, size: tuple[int, int], crop_scale: Sequence[float] | None, flip: bool):
        self.size, self.crop_scale, self.flip = tuple(size), crop_scale, flip

    def __call__(self, example: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        image = example["image"]
        if self.crop_scale:
            image = random_resized_crop(image, self.size, rng, self.crop_scale)
        else:
            image = resize_center_crop(image, self.size)
        if self.flip and rng.uniform() < 0.5:
            image = image[:, ::-1]
        return {"image": np.ascontiguousarray(image), "label": example["label"]}


class EvalResize:
    """Deterministic resize + center crop to the model's image size."""

    def __init__(self, size: tuple[int, int]):
        self.size = tuple(size)

    def __call__(self, example: dict[str, Any]) -> dict[str, Any]:
        return {"image": resize_center_crop(example["image"], self.size), "label": example["label"]}


def normalize_images(images: jax.Array, mean: Sequence[float], std: Sequence[float]) -> jax.Array:
    """Images -> float32 `(x - mean) / std` per channel, on device.

    uint8 images are first scaled by 1/255; float images are taken as already in [0, 1].
    """
    mean = jnp.asarray(mean, jnp.float32)
    std = jnp.asarray(std, jnp.float32)
    x = images.astype(jnp.float32)
    if images.dtype == jnp.uint8:
        x = x / 255.0
    return (x - mean) / std


def denormalize_images(images: jax.Array, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Inverse of `normalize_images`, clipped to uint8 `[B, H, W, C]` for figures."""
    x = np.asarray(images, np.float32) * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
