import jax
import numpy as np
import pytest

from mmjax.masking import farthest_point_sampling, group_points, knn_groups, random_mask, region_mask
from tests.mask_properties import check_indices, check_key_properties


def reference_fps(points, count):
    """Farthest-point sampling from index 0, written out in NumPy."""
    chosen = [0]
    dist = np.full(len(points), np.inf)
    for _ in range(count - 1):
        dist = np.minimum(dist, ((points - points[chosen[-1]]) ** 2).sum(-1))
        chosen.append(int(np.argmax(dist)))
    return np.array(chosen)


def test_fps_matches_the_reference_and_spreads_points():
    points = np.asarray(jax.random.normal(jax.random.key(0), (3, 200, 3)))
    ids = np.asarray(farthest_point_sampling(points, 16))
    for b in range(3):
        np.testing.assert_array_equal(ids[b], reference_fps(points[b], 16))
        assert len(set(ids[b])) == 16
    random_start = np.asarray(farthest_point_sampling(points, 16, jax.random.key(1)))
    assert (random_start[:, 0] != 0).any()


def test_knn_and_groups():
    points = jax.random.normal(jax.random.key(2), (2, 128, 3))
    g = group_points(points, 8, 10)
    p = np.asarray(points)
    centers = np.asarray(g.centers)
    np.testing.assert_array_equal(centers, p[np.arange(2)[:, None], np.asarray(g.center_ids)])
    d2 = ((centers[:, :, None] - p[:, None]) ** 2).sum(-1)
    want = np.argsort(d2, axis=-1)[..., :10]
    np.testing.assert_array_equal(np.sort(np.asarray(g.neighbor_ids), -1), np.sort(want, -1))
    np.testing.assert_array_equal(np.asarray(knn_groups(points, g.centers, 10)), np.asarray(g.neighbor_ids))
    # Each center is its own nearest neighbour; patches are relative to the center.
    np.testing.assert_array_equal(np.asarray(g.neighbor_ids)[..., 0], np.asarray(g.center_ids))
    rel = p[np.arange(2)[:, None, None], np.asarray(g.neighbor_ids)] - centers[:, :, None]
    np.testing.assert_allclose(np.asarray(g.patches), rel, atol=1e-6)


def test_region_mask_hides_the_patches_nearest_to_a_seed():
    centers = jax.random.normal(jax.random.key(3), (6, 32, 3))
    m = region_mask(jax.random.key(4), centers, 0.6)
    hidden = np.asarray(m.mask)
    count = 32 - int(32 * 0.4)
    assert (hidden.sum(1) == count).all()
    check_indices(m)
    c = np.asarray(centers)
    for b in range(6):
        # Some hidden patch is a seed whose `count` nearest patches are exactly the hidden set.
        d2 = ((c[b][:, None] - c[b][None]) ** 2).sum(-1)
        assert any(set(np.argsort(d2[s])[:count]) == set(np.flatnonzero(hidden[b])) for s in np.flatnonzero(hidden[b]))
    # Random masking over patches is not region-shaped in general.
    assert random_mask(jax.random.key(4), 6, 32, 0.6).mask.shape == (6, 32)


@pytest.mark.parametrize(
    ("make", "leaf"),
    [
        (
            lambda k: region_mask(k, jax.random.normal(jax.random.key(5), (4, 16, 3)), 0.5, num_regions=2),
            None,
        ),
        (
            lambda k: farthest_point_sampling(jax.random.normal(jax.random.key(6), (4, 64, 3)), 8, k),
            lambda x: x,
        ),
    ],
)
def test_key_properties(make, leaf):
    check_key_properties(make, leaf or (lambda m: m.mask))


def test_errors_name_the_value():
    with pytest.raises(ValueError, match="num_samples must be in"):
        farthest_point_sampling(np.zeros((1, 4, 3), np.float32), 5)
    with pytest.raises(ValueError, match="num_regions must be in"):
        region_mask(jax.random.key(0), np.zeros((1, 4, 3), np.float32), 0.5, num_regions=0)
