import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.masking import (
    apply_frequency_mask,
    frequency_mask,
    image_from_spectrum,
    image_spectrum,
    spec_band_mask,
    time_frequency_mask,
    variate_patch_mask,
)
from tests.mask_properties import check_indices, check_key_properties


def test_time_frequency_mask_hides_whole_columns_and_rows():
    m = time_frequency_mask(jax.random.key(0), 6, (64, 8), 0.2, 0.25)
    hidden = np.asarray(m.mask).reshape(6, 64, 8)
    times = hidden.all(axis=2)
    freqs = hidden.all(axis=1)
    assert (times.sum(1) == int(0.2 * 64)).all() and (freqs.sum(1) == 2).all()
    np.testing.assert_array_equal(hidden, times[:, :, None] | freqs[:, None, :])
    check_indices(m)


def test_spec_bands_are_contiguous_and_bounded():
    m = spec_band_mask(jax.random.key(1), 200, (32, 16), num_time_bands=1, max_time_width=5, num_freq_bands=1)
    hidden = np.asarray(m.mask).reshape(200, 32, 16)
    time_cols = hidden.all(axis=2)
    for row in time_cols:
        idx = np.flatnonzero(row)
        assert len(idx) <= 5
        if len(idx):
            assert idx.max() - idx.min() + 1 == len(idx)  # one contiguous band
    widths = time_cols.sum(1)
    assert set(widths.tolist()) == set(range(6))  # widths 0..5 all occur


def test_spectrum_round_trip_and_filters():
    images = jax.random.uniform(jax.random.key(2), (2, 16, 16, 3))
    np.testing.assert_allclose(np.asarray(image_from_spectrum(image_spectrum(images))), np.asarray(images), atol=1e-5)
    fm = frequency_mask(jax.random.key(3), 64, (16, 16), radius=4)
    low = np.asarray(fm.low_pass)
    assert 0 < low.sum() < 64
    removed = np.asarray(fm.removed)
    yy, xx = np.mgrid[:16, :16]
    inside = (yy - 8) ** 2 + (xx - 8) ** 2 <= 16
    np.testing.assert_array_equal(removed[low], np.broadcast_to(~inside, removed[low].shape))
    np.testing.assert_array_equal(removed[~low], np.broadcast_to(inside, removed[~low].shape))
    # A constant image is pure zero frequency: the low-pass keeps it, the high-pass removes it.
    flat = jnp.full((64, 16, 16, 1), 0.7)
    out = np.asarray(apply_frequency_mask(flat, fm))
    np.testing.assert_allclose(out[low], 0.7, atol=1e-5)
    np.testing.assert_allclose(out[~low], 0.0, atol=1e-5)
    # The filtered image has no energy at removed frequencies.
    x = np.asarray(apply_frequency_mask(jnp.asarray(np.tile(np.asarray(images[:1]), (64, 1, 1, 1))), fm))
    spec = np.abs(np.asarray(image_spectrum(jnp.asarray(x))))
    assert spec[np.broadcast_to(removed[..., None], spec.shape)].max() < 1e-3


def test_variate_patch_mask_counts_per_variate():
    m = variate_patch_mask(jax.random.key(4), 4, 3, 20, 0.4)
    hidden = np.asarray(m.mask).reshape(4, 3, 20)
    assert (hidden.sum(2) == 20 - int(20 * 0.6)).all()
    assert not (hidden == hidden[:, :1]).all()  # variates differ
    keep = np.asarray(m.ids_keep).reshape(4, 3, -1)
    for c in range(3):
        assert ((keep[:, c] >= 20 * c) & (keep[:, c] < 20 * (c + 1))).all()
    check_indices(m)
    shared = np.asarray(variate_patch_mask(jax.random.key(4), 4, 3, 20, 0.4, shared=True).mask).reshape(4, 3, 20)
    assert (shared == shared[:, :1]).all()


@pytest.mark.parametrize(
    ("make", "leaf"),
    [
        (lambda k: time_frequency_mask(k, 4, (16, 8), 0.25, 0.25), lambda m: m.mask),
        (lambda k: spec_band_mask(k, 4, (16, 8)), lambda m: m.mask),
        (lambda k: frequency_mask(k, 16, (8, 8), radius=2), lambda m: m.removed),
        (lambda k: variate_patch_mask(k, 4, 2, 8, 0.5), lambda m: m.mask),
    ],
)
def test_key_properties(make, leaf):
    check_key_properties(make, leaf)


def test_errors_name_the_value():
    with pytest.raises(ValueError, match="time_ratio must be in"):
        time_frequency_mask(jax.random.key(0), 1, (4, 4), 2.0)
    with pytest.raises(ValueError, match="must fit the grid"):
        spec_band_mask(jax.random.key(0), 1, (4, 4), max_time_width=9)
