import math

import jax
import numpy as np
import pytest

from mmjax.masking import blockwise_mask
from tests.mask_properties import check_key_properties


def reference_blockwise(rng, height, width, budget, min_block=16, min_aspect=0.3, tries=10):
    """BEiT's block-wise rule (REFERENCE.md), written out in NumPy with a Python loop."""
    log_lo, log_hi = math.log(min_aspect), math.log(1 / min_aspect)
    mask = np.zeros((height, width), bool)
    count = 0
    while count < budget:
        remaining = budget - count
        delta = 0
        for _ in range(tries):
            area = min_block + (remaining - min_block) * rng.random()  # random.uniform(a, b), a > b allowed
            aspect = math.exp(rng.uniform(log_lo, log_hi))
            h = round(math.sqrt(area * aspect))
            w = round(math.sqrt(area / aspect))
            if h < height and w < width:
                top = rng.integers(0, height - h + 1)
                left = rng.integers(0, width - w + 1)
                window = mask[top : top + h, left : left + w]
                new = h * w - window.sum()
                if 0 < new <= remaining:
                    window[...] = True
                    delta = new
                    break
        if delta == 0:
            break
        count += delta
    return mask


@pytest.mark.parametrize(("grid", "budget", "min_block"), [((14, 14), 75, 16), ((8, 8), 24, 4)])
def test_masked_fraction_and_spread_match_the_reference_algorithm(grid, budget, min_block):
    n = 1500
    rng = np.random.default_rng(0)
    ref = np.array([reference_blockwise(rng, *grid, budget, min_block).sum() for _ in range(n)])
    ours = np.asarray(blockwise_mask(jax.random.key(0), n, grid, budget, min_block=min_block).mask).sum(1)
    assert ours.max() <= budget and ref.max() <= budget
    se = math.sqrt(ours.var() / n + ref.var() / n)
    assert abs(ours.mean() - ref.mean()) < 4 * se + 1e-3, (ours.mean(), ref.mean())
    assert 0.75 < ours.std() / ref.std() < 1.33, (ours.std(), ref.std())
    # How often the budget is met exactly.
    hit_ours, hit_ref = (ours == budget).mean(), (ref == budget).mean()
    assert abs(hit_ours - hit_ref) < 4 * math.sqrt(hit_ref * (1 - hit_ref) * 2 / n) + 1e-3


def _box_stats(masks):
    """Per mask: is it one solid rectangle, and its bounding-box height and width."""
    solid, heights, widths = [], [], []
    for row in masks:
        rows, cols = np.nonzero(row)
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        solid.append(h * w == row.sum())
        heights.append(h)
        widths.append(w)
    return np.array(solid), np.array(heights), np.array(widths)


def test_block_shapes_match_the_reference():
    # A budget of one minimum block: most masks are one rectangle, whose shape follows
    # the log-uniform aspect ratio; compare the shape statistics with the reference.
    n = 1000
    rng = np.random.default_rng(1)
    ref = np.stack([reference_blockwise(rng, 14, 14, 16, 16) for _ in range(n)])
    ours = np.asarray(blockwise_mask(jax.random.key(1), n, (14, 14), 16, min_block=16).mask).reshape(n, 14, 14)
    (s_ref, h_ref, w_ref), (s_ours, h_ours, w_ours) = _box_stats(ref), _box_stats(ours)
    assert s_ref.mean() > 0.5
    assert abs(s_ours.mean() - s_ref.mean()) < 4 * math.sqrt(0.25 * 2 / n)
    for a, b in [(h_ours, h_ref), (w_ours, w_ref)]:
        assert abs(a.mean() - b.mean()) < 4 * math.sqrt((a.var() + b.var()) / n)
    # Symmetric aspect range: tall and wide blocks are equally likely.
    assert abs(np.log(h_ours / w_ours).mean()) < 4 * np.log(h_ours / w_ours).std() / math.sqrt(n)


def test_key_properties_and_errors():
    check_key_properties(lambda k: blockwise_mask(k, 4, (14, 14), 75))
    with pytest.raises(ValueError, match="num_masked must be in"):
        blockwise_mask(jax.random.key(0), 1, (4, 4), 17)
