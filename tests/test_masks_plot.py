import sys

import jax
import numpy as np
import pytest

from mmjax.masking import plot_masks, random_mask


def test_plot_masks_writes_a_png_with_the_masks_drawn(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    m = random_mask(jax.random.key(0), 3, 16, 0.5)
    images = np.ones((3, 32, 32, 3), np.float32)
    path = tmp_path / "masks.png"
    assert plot_masks(m, (4, 4), images, titles=["a", "b", "c"], path=str(path)) is None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = plt.imread(str(path))
    assert pixels.shape[1] > pixels.shape[0]  # three panels in a row
    # White image: hidden patches are drawn grey, so the picture is not all white.
    assert (pixels[..., :3] < 0.9).any()
    fig = plot_masks(np.asarray(m.mask), (4, 4))
    assert len(fig.axes) == 3
    plt.close(fig)


def test_plot_masks_checks_shapes():
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="masks must be \\[B, 16\\]"):
        plot_masks(np.zeros((2, 15), bool), (4, 4))
    with pytest.raises(ValueError, match="divisible by"):
        plot_masks(np.zeros((2, 16), bool), (4, 4), np.zeros((2, 30, 30, 3)))


def test_missing_matplotlib_names_the_plot_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="`plot` extra"):
        plot_masks(np.zeros((1, 4), bool), (2, 2))
