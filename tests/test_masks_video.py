import jax
import numpy as np
import pytest

from mmjax.masking import frame_mask, running_cell_mask, spacetime_mask, tube_mask
from tests.mask_properties import check_indices, check_key_properties


def test_tube_is_identical_across_time_with_exact_counts():
    m = tube_mask(jax.random.key(0), 6, (8, 14, 14), 0.9)
    hidden = np.asarray(m.mask).reshape(6, 8, 196)
    assert (hidden == hidden[:, :1]).all()
    assert (hidden[:, 0].sum(1) == int(0.9 * 196)).all()
    check_indices(m)


def test_tube_positions_are_uniform():
    hidden = np.asarray(tube_mask(jax.random.key(1), 3000, (2, 2, 2), 0.5).mask).reshape(3000, 2, 4)[:, 0]
    np.testing.assert_allclose(hidden.mean(0), 0.5, atol=4 * np.sqrt(0.25 / 3000))


def test_frame_mask_hides_whole_frames():
    m = frame_mask(jax.random.key(2), 5, (8, 4, 4), 0.5)
    hidden = np.asarray(m.mask).reshape(5, 8, 16)
    assert (hidden == hidden[:, :, :1]).all()
    assert (hidden[:, :, 0].sum(1) == 4).all()
    check_indices(m)


def test_spacetime_mask_has_the_mae_count():
    m = spacetime_mask(jax.random.key(3), 4, (4, 7, 7), 0.9)
    assert (np.asarray(m.mask).sum(1) == 196 - int(196 * 0.1)).all()
    hidden = np.asarray(m.mask).reshape(4, 4, 49)
    assert not (hidden == hidden[:, :1]).all()  # not a tube


def test_running_cell_counts_and_rotation():
    m = running_cell_mask(jax.random.key(4), 3, (8, 4, 6), (2, 2), 0.5)
    hidden = np.asarray(m.mask).reshape(3, 8, 2, 2, 3, 2)  # b, t, cell row, in row, cell col, in col
    per_cell = hidden.sum(axis=(3, 5))
    assert (per_cell == 2).all()  # half of each 2x2 cell, every frame
    # Over C = 4 consecutive frames every position is hidden exactly twice.
    assert (hidden[:, :4].sum(1) == 2).all()
    # The hidden set moves from frame to frame.
    assert not (hidden[:, 0] == hidden[:, 1]).all()
    check_indices(m)


@pytest.mark.parametrize(
    "make",
    [
        lambda k: tube_mask(k, 4, (4, 4, 4), 0.75),
        lambda k: frame_mask(k, 4, (8, 2, 2), 0.5),
        lambda k: spacetime_mask(k, 4, (2, 4, 4), 0.75),
        lambda k: running_cell_mask(k, 8, (4, 4, 4), (2, 2), 0.5),
    ],
)
def test_key_properties(make):
    check_key_properties(make)


def test_errors_name_the_value():
    with pytest.raises(ValueError, match="mask_ratio must be in"):
        tube_mask(jax.random.key(0), 1, (2, 2, 2), 1.5)
    with pytest.raises(ValueError, match="divisible by cell"):
        running_cell_mask(jax.random.key(0), 1, (2, 3, 4), (2, 2))
