"""Image grids written as PNG with Pillow (no plotting library needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np


def image_grid(rows: Sequence[np.ndarray], scale: int = 1, pad: int = 2) -> np.ndarray:
    """Tile rows of uint8 images `[n, H, W, C]` into one uint8 `[rows * (H+pad), n * (W+pad), 3]`."""
    n, h, w, _ = rows[0].shape
    grid = np.full((len(rows) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for r, images in enumerate(rows):
        for c, image in enumerate(images):
            rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
            top, left = pad + r * (h + pad), pad + c * (w + pad)
            grid[top : top + h, left : left + w] = rgb
    if scale > 1:
        grid = np.kron(grid, np.ones((scale, scale, 1), np.uint8))
    return grid


def save_png(path: str, image: np.ndarray) -> None:
    """Write a uint8 `[H, W, 3]` array; atomic (temporary file, then rename)."""
    from PIL import Image

    tmp = path + ".tmp.png"
    Image.fromarray(image).save(tmp)
    os.replace(tmp, path)
