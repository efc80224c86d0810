"""Tile classification and the visiting schedule."""

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.kernels import (
    EMPTY,
    FULL,
    PARTIAL,
    block_causal_mask,
    block_states,
    expand_block_pattern,
    make_schedule,
)
from mmjax.kernels.block_mask import HEADER, max_steps
from mmjax.kernels.reference import allowed_mask


def brute_force_states(allowed, bq, bk):
    """Classify tiles from the dense allowed mask `[B, H, Lq, Lk]`."""
    b, h, lq, lk = allowed.shape
    tiles = np.asarray(allowed).reshape(b, h, lq // bq, bq, lk // bk, bk)
    some, every = tiles.any(axis=(3, 5)), tiles.all(axis=(3, 5))
    return np.where(every, FULL, np.where(some, PARTIAL, EMPTY))


def test_states_match_the_dense_mask_for_each_fact():
    rng = np.random.default_rng(0)
    lq, lk, bq, bk = 32, 48, 8, 16
    lengths = jnp.array([0, 20, 48])
    q_seg = jnp.asarray(np.sort(rng.integers(0, 3, (3, lq)), axis=1), jnp.int32)
    kv_seg = jnp.asarray(np.sort(rng.integers(0, 3, (3, lk)), axis=1), jnp.int32)
    pattern = rng.integers(0, 3, (3, 2, lq // bq, lk // bk))
    mask = np.array(expand_block_pattern(pattern == FULL, bq, bk))
    mask |= np.asarray(expand_block_pattern(pattern == PARTIAL, bq, bk)) & (rng.random(mask.shape) < 0.5)
    for facts in [
        {"key_lengths": lengths},
        {"q_segment_ids": q_seg, "kv_segment_ids": kv_seg},
        {"mask": jnp.asarray(mask)},
        {"key_lengths": lengths, "q_segment_ids": q_seg, "kv_segment_ids": kv_seg, "mask": jnp.asarray(mask)},
    ]:
        ours = np.asarray(block_states(lq, lk, bq, bk, **facts))
        allowed = np.broadcast_to(allowed_mask(3, lq, lk, **facts), (3, ours.shape[1], lq, lk))
        want = brute_force_states(allowed, bq, bk)
        # Each fact alone (sorted segments here) is classified exactly. Combined facts
        # may leave a tile partial that is really empty (each cuts part of it), never
        # the other way round.
        assert ((ours == EMPTY) <= (want == EMPTY)).all()  # never skips a visible tile
        assert ((ours == FULL) <= (want == FULL)).all()  # never drops a needed mask
        if len(facts) <= 2:
            np.testing.assert_array_equal(ours, want)


def test_unsorted_segments_are_conservative():
    seg = jnp.array([[0, 1, 0, 1, 2, 2, 2, 2]])
    ours = np.asarray(block_states(8, 8, 4, 4, q_segment_ids=seg, kv_segment_ids=seg))
    # Tiles holding ids {0, 1} overlap {2} only in range terms; exact answer would be empty.
    np.testing.assert_array_equal(ours[0, 0], [[PARTIAL, EMPTY], [EMPTY, FULL]])


def test_schedule_lists_full_then_partial_tiles_and_repeats_the_last():
    state = jnp.array([[[[PARTIAL, FULL, EMPTY, FULL], [EMPTY, EMPTY, EMPTY, EMPTY]]]], jnp.int8)
    sched = make_schedule(state)
    fwd = np.asarray(sched.forward)[0, 0]
    assert fwd.shape[-1] == 8  # HEADER + 4 blocks, already a power of two
    np.testing.assert_array_equal(fwd[0], [2, 3, 1, 3, 0, 0, 0, 0])
    np.testing.assert_array_equal(fwd[1, :HEADER], [0, 0])
    bwd = np.asarray(sched.backward)[0, 0]  # per key block: the query blocks that see it
    np.testing.assert_array_equal(bwd[:, :3], [[0, 1, 0], [1, 1, 0], [0, 0, 0], [1, 1, 0]])
    assert max_steps(sched.forward) == 3
    assert jax.jit(lambda s: max_steps(make_schedule(s).forward) is None)(state)


def test_block_causal_skips_the_upper_triangle():
    mask = jnp.asarray(block_causal_mask(64, 64, 16))
    states = np.asarray(block_states(64, 64, 16, 16, mask=mask))[0, 0]
    np.testing.assert_array_equal(states, np.where(np.tri(4, dtype=bool), FULL, EMPTY))
    fwd = np.asarray(make_schedule(jnp.asarray(states)[None, None]).forward)[0, 0]
    np.testing.assert_array_equal(fwd[:, 1], [1, 2, 3, 4])
