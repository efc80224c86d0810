import jax
import numpy as np
import pytest

from mmjax.masking import multiblock_masks
from tests.mask_properties import check_key_properties

GRID = (14, 14)


def reachable_sizes(grid, scale, aspect):
    """Every (h, w) the reference `_sample_block_size` can return, over a fine grid of draws."""
    height, width = grid
    sizes = set()
    for u in np.linspace(0, 1, 4001):
        s = scale[0] + u * (scale[1] - scale[0])
        ar = aspect[0] + u * (aspect[1] - aspect[0])
        keep = int(height * width * s)
        h = min(round(np.sqrt(keep * ar)), height - 1)
        w = min(round(np.sqrt(keep / ar)), width - 1)
        sizes.add((h, w))
    return sizes


def test_block_sizes_follow_the_reference_rule_and_ranges():
    target_ok = reachable_sizes(GRID, (0.15, 0.2), (0.75, 1.5))
    context_ok = reachable_sizes(GRID, (0.85, 1.0), (1.0, 1.0))
    seen = set()
    for seed in range(12):
        m = multiblock_masks(jax.random.key(seed), 2, GRID)
        h, w = (int(x) for x in m.target_shape)
        assert (h, w) in target_ok
        assert tuple(int(x) for x in m.context_shape) in context_ok
        # Scale and aspect ratio within the configured ranges up to the rounding of h and w.
        area = int(196 * 0.2)
        assert 0.15 * 196 - 2 * np.sqrt(area) <= h * w <= 0.2 * 196 + 2 * np.sqrt(area) + 1
        assert (0.75 * w - 1) / (w + 1) * w <= h and h <= 1.5 * w + 1.5
        seen.add((h, w))
    assert len(seen) > 1  # sizes are drawn per batch, not fixed


def test_targets_are_shared_size_rectangles_and_ids_match_masks():
    m = multiblock_masks(jax.random.key(3), 16, GRID)
    h, w = (int(x) for x in m.target_shape)
    targets = np.asarray(m.target_mask).reshape(16, 4, 14, 14)
    for block in targets.reshape(-1, 14, 14):
        rows, cols = np.nonzero(block)
        assert block.sum() == h * w
        assert rows.max() - rows.min() + 1 == h and cols.max() - cols.min() + 1 == w
    ids, valid = np.asarray(m.target_ids), np.asarray(m.target_valid)
    assert (valid.sum(-1) == h * w).all()
    for b in range(16):
        for t in range(4):
            assert set(ids[b, t][valid[b, t]].tolist()) == set(np.flatnonzero(targets[b, t]).tolist())
    # Positions are drawn per image.
    assert len({targets[b].tobytes() for b in range(16)}) > 1


def test_context_is_disjoint_from_targets_and_cut_to_the_shortest():
    m = multiblock_masks(jax.random.key(4), 32, GRID)
    context = np.asarray(m.context_mask)
    targets = np.asarray(m.target_mask).any(1)
    assert not (context & targets).any()
    counts = np.asarray(m.context_counts)
    assert (counts > 10).all()  # min_keep
    shortest = counts.min()
    assert (context.sum(1) == shortest).all()
    ids, valid = np.asarray(m.context_ids), np.asarray(m.context_valid)
    assert (valid.sum(1) == shortest).all() and valid[:, :shortest].all()
    for b in range(32):
        kept = ids[b][valid[b]]
        assert (np.diff(kept) > 0).all()  # increasing order, as torch.nonzero
        np.testing.assert_array_equal(kept, np.flatnonzero(context[b]))
    # Before the cut, the context is the context block minus the targets.
    ch, cw = (int(x) for x in m.context_shape)
    assert (counts <= ch * cw).all()
    np.testing.assert_array_equal(np.asarray(m.encoder_mask().mask), ~context)


def test_crowded_targets_relax_the_constraint_instead_of_failing():
    # Large targets leave too little context unless target blocks are dropped from the constraint.
    m = multiblock_masks(
        jax.random.key(5),
        64,
        (8, 8),
        num_targets=4,
        target_scale=(0.35, 0.4),
        target_aspect=(1.0, 1.0),
        context_scale=(0.6, 0.6),
        min_keep=8,
    )
    assert (np.asarray(m.context_counts) > 8).all()


def test_allow_overlap_keeps_the_whole_context_block():
    m = multiblock_masks(jax.random.key(6), 8, GRID, allow_overlap=True)
    ch, cw = (int(x) for x in m.context_shape)
    assert (np.asarray(m.context_counts) == ch * cw).all()


def test_key_properties_and_errors():
    check_key_properties(lambda k: multiblock_masks(k, 4, GRID), leaf=lambda m: m.target_mask)
    with pytest.raises(ValueError, match="target_scale must satisfy"):
        multiblock_masks(jax.random.key(0), 2, GRID, target_scale=(0.3, 0.2))
