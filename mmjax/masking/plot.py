"""A PNG grid of masks drawn over their images (needs the optional `plot` extra: matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mmjax.masking.mask import Mask


def plot_masks(
    masks: Mask | Any,
    grid: tuple[int, int],
    images: Any | None = None,
    *,
    titles: Sequence[str] | None = None,
    path: str | None = None,
    ncols: int | None = None,
    panel_size: float = 1.6,
    dpi: int = 80,
    hidden_color: tuple[float, float, float] = (0.55, 0.55, 0.6),
):
    """Draw each mask as a panel: hidden tokens greyed out over the image (or dark on white).

    Args:
      masks: a `Mask` or bool array `[B, N]` (True = hidden), N = `grid[0] * grid[1]`.
      grid: token grid `(h, w)` the masks are laid out on, row-major.
      images: optional `[B, H, W]` or `[B, H, W, C]` (floats in [0, 1] or uint8); H, W
        divisible by h, w.
      titles: one per panel.
      path: if given, the figure is saved there as PNG and closed.
      ncols: panels per row (default: all in one row, at most 8).
      panel_size: inches per panel.
      dpi: resolution of the saved PNG.
      hidden_color: RGB of hidden tokens.

    Returns:
      The matplotlib Figure (None when `path` is given).
    """
    try:
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plot_masks needs matplotlib: install mmjax with the `plot` extra (pip install 'mmjax[plot]')"
        ) from err

    hidden = np.asarray(masks.mask if isinstance(masks, Mask) else masks).astype(bool)
    if hidden.ndim == 1:
        hidden = hidden[None]
    h, w = grid
    if hidden.ndim != 2 or hidden.shape[1] != h * w:
        raise ValueError(f"masks must be [B, {h * w}] for grid {grid}, got shape {hidden.shape}")
    batch = hidden.shape[0]
    panels = _panels(hidden.reshape(batch, h, w), images, np.asarray(hidden_color, np.float32))
    ncols = ncols or min(batch, 8)
    nrows = -(-batch // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < batch:
            ax.imshow(panels[i], interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout(pad=0.3)
    if path is None:
        return fig
    fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.05)  # titles whole
    plt.close(fig)
    return None


def _panels(hidden: np.ndarray, images: Any | None, color: np.ndarray) -> np.ndarray:
    """RGB panels `[B, H, W, 3]` in [0, 1]."""
    batch, h, w = hidden.shape
    if images is None:
        # White cells, hidden ones dark, with faint lines between cells when they are big enough.
        scale = max(2, 128 // max(h, w))
        big = hidden.repeat(scale, 1).repeat(scale, 2)
        panels = np.where(big[..., None], color * 0.6, 1.0).astype(np.float32)
        if scale >= 6:
            panels[:, ::scale] = np.minimum(panels[:, ::scale], 0.85)
            panels[:, :, ::scale] = np.minimum(panels[:, :, ::scale], 0.85)
        return panels
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    if images.shape[0] == 1 and batch > 1:
        images = np.repeat(images, batch, axis=0)
    height, width = images.shape[1:3]
    if images.shape[0] != batch or height % h or width % w:
        raise ValueError(f"images {images.shape} must be [{batch}, H, W, C] with H, W divisible by {(h, w)}")
    big = hidden.repeat(height // h, 1).repeat(width // w, 2)[..., None]
    faded = 0.25 * np.clip(images, 0.0, 1.0) + 0.75 * color
    return np.where(big, faded, np.clip(images, 0.0, 1.0)).astype(np.float32)
