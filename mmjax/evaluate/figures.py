"""Image grids written as PNG with Pillow (no plotting library needed), rows optionally labelled."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np


def image_grid(
    rows: Sequence[np.ndarray], scale: int = 1, pad: int = 2, labels: Sequence[str] | None = None
) -> np.ndarray:
    """Tile rows of uint8 images `[n, H, W, C]` into one uint8 `[rows * (H+pad), n * (W+pad), 3]`.

    With `labels` (one per row), a white column on the left names each row (after scaling, so
    the text stays legible at any image size).
    """
    n, h, w, _ = rows[0].shape
    grid = np.full((len(rows) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for r, images in enumerate(rows):
        for c, image in enumerate(images):
            rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
            top, left = pad + r * (h + pad), pad + c * (w + pad)
            grid[top : top + h, left : left + w] = rgb
    if scale > 1:
        grid = np.kron(grid, np.ones((scale, scale, 1), np.uint8))
    if labels is None:
        return grid
    if len(labels) != len(rows):
        raise ValueError(f"image_grid: {len(labels)} labels for {len(rows)} rows")
    return _label_rows(grid, labels, row_height=(h + pad) * scale, top=pad * scale)


def _label_rows(grid: np.ndarray, labels: Sequence[str], row_height: int, top: int) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    boxes = [measure.textbbox((0, 0), text, font=font) for text in labels]
    margin = max(b[2] - b[0] for b in boxes) + 12
    canvas = Image.new("RGB", (grid.shape[1] + margin, grid.shape[0]), "white")
    canvas.paste(Image.fromarray(grid), (margin, 0))
    draw = ImageDraw.Draw(canvas)
    for r, (text, box) in enumerate(zip(labels, boxes, strict=True)):
        y = top + r * row_height + (row_height - (box[3] - box[1])) // 2 - box[1]
        draw.text((6, y), text, fill="black", font=font)
    return np.asarray(canvas)


def save_png(path: str, image: np.ndarray) -> None:
    """Write a uint8 `[H, W, 3]` array; atomic (temporary file, then rename)."""
    from PIL import Image

    tmp = path + ".tmp.png"
    Image.fromarray(image).save(tmp)
    os.replace(tmp, path)
