"""The Pallas flash kernels (both lowerings, interpret mode on CPU) against the jnp reference."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.kernels import BlockSizes, expand_block_pattern, flash_attention, reference_attention

B, H, D = 2, 2, 8
LQ, LK = 40, 56  # not multiples of the 16-wide test tiles: the wrapper pads
TILES = BlockSizes(16, 16)


def qkv(seed, lq=LQ, lk=LK, d=D, dtype=jnp.float32):
    ks = jax.random.split(jax.random.key(seed), 3)
    return (
        jax.random.normal(ks[0], (B, lq, H, d)).astype(dtype),
        jax.random.normal(ks[1], (B, lk, H, d)).astype(dtype),
        jax.random.normal(ks[2], (B, lk, H, d)).astype(dtype),
    )


def sparse_mask(seed, lq=LQ, lk=LK, heads=1, block=16):
    """bool `[B, heads, lq, lk]`: per tile empty, full or random (partial), cropped to the lengths."""
    rng = np.random.default_rng(seed)
    nq, nk = -(-lq // block), -(-lk // block)
    kind = rng.integers(0, 3, size=(B, heads, nq, nk))
    kind[0, 0, 0, :] = 0  # a query tile that sees nothing at all
    dense = np.array(expand_block_pattern(kind == 2, block, block))
    partial = np.asarray(expand_block_pattern(kind == 1, block, block))
    dense |= partial & (rng.random(dense.shape) < 0.5)
    return jnp.asarray(dense[..., :lq, :lk])


def sorted_segments(seed, length, n=3):
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.integers(0, length, size=(B, n - 1)), axis=1)
    return jnp.asarray((np.arange(length)[None, :, None] >= cuts[:, None, :]).sum(-1), jnp.int32)


def mask_kinds():
    seg_q, seg_k = sorted_segments(1, LQ), sorted_segments(2, LK)
    shuffled_q = jnp.asarray(np.random.default_rng(3).integers(0, 2, (B, LQ)), jnp.int32)
    shuffled_k = jnp.asarray(np.random.default_rng(4).integers(0, 2, (B, LK)), jnp.int32)
    return {
        "none": {},
        "key_lengths": {"key_lengths": jnp.array([0, 37])},
        "segments": {"q_segment_ids": seg_q, "kv_segment_ids": seg_k},
        "unsorted_segments": {"q_segment_ids": shuffled_q, "kv_segment_ids": shuffled_k},
        "block_sparse": {"mask": sparse_mask(5)[:, 0]},
        "all": {
            "key_lengths": jnp.array([21, 56]),
            "q_segment_ids": seg_q,
            "kv_segment_ids": seg_k,
            "mask": sparse_mask(6, heads=H),
        },
    }


def value_and_grads(fn, q, k, v, **facts):
    """Output and the gradients of a fixed random projection of it, under jit."""
    weights = jax.random.normal(jax.random.key(9), q.shape[:1] + q.shape[1:], jnp.float32)

    def loss(q, k, v):
        out = fn(q, k, v, **facts)
        return (out.astype(jnp.float32) * weights).sum(), out

    (_, out), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))(q, k, v)
    return out, grads


def assert_close(ours, theirs, atol, rtol=1e-5):
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, atol=atol, rtol=rtol)


@pytest.mark.parametrize("lowering", ["gpu", "tpu"])
@pytest.mark.parametrize("kind", ["none", "key_lengths", "segments", "unsorted_segments", "block_sparse", "all"])
def test_outputs_and_gradients_match_reference(lowering, kind):
    facts = mask_kinds()[kind]
    q, k, v = qkv(0)
    flash = functools.partial(flash_attention, lowering=lowering, block_sizes=TILES)
    ours = value_and_grads(flash, q, k, v, **facts)
    theirs = value_and_grads(reference_attention, q, k, v, **facts)
    assert_close(ours[0], theirs[0], atol=2e-5)
    assert_close(ours[1], theirs[1], atol=1e-4)


@pytest.mark.parametrize("lowering", ["gpu", "tpu"])
def test_rows_without_keys_give_zeros_and_zero_gradients(lowering):
    q, k, v = qkv(1)
    mask = jnp.ones((B, LQ, LK), bool).at[1, :20].set(False)  # query tiles 0 and part of 1 see nothing
    facts = {"key_lengths": jnp.array([0, LK]), "mask": mask}
    flash = functools.partial(flash_attention, lowering=lowering, block_sizes=TILES)
    out, (dq, dk, dv) = value_and_grads(flash, q, k, v, **facts)
    np.testing.assert_array_equal(np.asarray(out[0]), 0.0)
    np.testing.assert_array_equal(np.asarray(out[1, :20]), 0.0)
    np.testing.assert_array_equal(np.asarray(dq[0]), 0.0)
    np.testing.assert_array_equal(np.asarray(dq[1, :20]), 0.0)
    np.testing.assert_array_equal(np.asarray(dk[0]), 0.0)
    assert np.isfinite(np.asarray(dv)).all() and np.abs(np.asarray(out[1, 20:])).sum() > 0


@pytest.mark.parametrize("lowering", ["gpu", "tpu"])
def test_bfloat16_within_bfloat16_tolerance(lowering):
    q, k, v = qkv(2, dtype=jnp.bfloat16)
    facts = {"key_lengths": jnp.array([13, 50])}
    flash = functools.partial(flash_attention, lowering=lowering, block_sizes=TILES)
    out, grads = value_and_grads(flash, q, k, v, **facts)
    assert out.dtype == jnp.bfloat16 and all(g.dtype == jnp.bfloat16 for g in grads)
    # The reference sees the same bf16 inputs and works in float32 throughout.
    ref_out, ref_grads = value_and_grads(reference_attention, *(x.astype(jnp.float32) for x in (q, k, v)), **facts)
    assert_close(out, ref_out, atol=3e-2, rtol=2e-2)
    assert_close(grads, ref_grads, atol=1e-1, rtol=5e-2)


def test_scale_head_dim_padding_and_cross_attention():
    # Head dim 12 pads to 16 on the GPU path; Lq != Lk; a custom scale.
    q, k, v = qkv(3, lq=9, lk=33, d=12)
    ours = value_and_grads(functools.partial(flash_attention, lowering="gpu", block_sizes=TILES, scale=0.3), q, k, v)
    theirs = value_and_grads(functools.partial(reference_attention, scale=0.3), q, k, v)
    assert_close(ours, theirs, atol=1e-4)


def test_traced_masks_under_jit_and_default_tiles():
    q, k, v = qkv(4)
    mask = sparse_mask(7)

    @jax.jit
    def run(q, k, v, lengths, mask):
        return flash_attention(q, k, v, key_lengths=lengths, mask=mask)

    lengths = jnp.array([5, 50])
    np.testing.assert_allclose(
        np.asarray(run(q, k, v, lengths, mask)),
        np.asarray(reference_attention(q, k, v, key_lengths=lengths, mask=mask)),
        atol=2e-5,
    )


def test_errors_name_the_problem():
    q, k, v = qkv(5)
    with pytest.raises(ValueError, match="lowering must be one of .*'cuda'"):
        flash_attention(q, k, v, lowering="cuda")
    with pytest.raises(ValueError, match="does not fit"):
        flash_attention(q, k, v, mask=jnp.ones((3, LQ, LK), bool))
    with pytest.raises(ValueError, match="given together"):
        flash_attention(q, k, v, q_segment_ids=jnp.zeros((B, LQ), jnp.int32))
    with pytest.raises(ValueError, match=r"q \[B, Lq, H, Dh\]"):
        flash_attention(q[0], k, v)


@pytest.mark.parametrize("lowering", ["gpu", "tpu"])
def test_backward_tiles_of_their_own_match_reference(lowering):
    # Forward 32 x 16 tiles, backward 16 x 32: the padding covers both and each pass
    # visits the schedule built for its own tiles.
    facts = mask_kinds()["all"]
    q, k, v = qkv(4)
    tiles = BlockSizes(32, 16, backward=BlockSizes(16, 32))
    ours = value_and_grads(functools.partial(flash_attention, lowering=lowering, block_sizes=tiles), q, k, v, **facts)
    theirs = value_and_grads(reference_attention, q, k, v, **facts)
    assert_close(ours[0], theirs[0], atol=2e-5)
    assert_close(ours[1], theirs[1], atol=1e-4)


def test_default_gpu_tiles_follow_dtype_and_head_dim():
    tuned = BlockSizes.default("gpu", 128, jnp.bfloat16)
    assert (tuned.block_q, tuned.block_k, tuned.num_warps) == (128, 64, 4)
    assert (tuned.backward.block_q, tuned.backward.block_k, tuned.backward.num_warps) == (64, 64, 4)
    assert BlockSizes.default("gpu", 128, jnp.float32) == BlockSizes(64, 64)
    assert BlockSizes.default("gpu", 64, jnp.bfloat16) == BlockSizes(64, 64)
    assert BlockSizes.default("tpu", 128, jnp.bfloat16) == BlockSizes(512, 512)
    with pytest.raises(ValueError, match=r"block_sizes.backward.num_warps=3"):
        q, k, v = qkv(0)
        flash_attention(q, k, v, lowering="gpu", block_sizes=BlockSizes(16, 16, backward=BlockSizes(16, 16, 3)))


def test_tile_aligned_inputs_without_mask_facts_take_the_dense_loop(monkeypatch):
    # 32 x 48 with 16-wide tiles needs no padding and so no key lengths: the GPU kernels
    # loop over every tile by count instead of reading the schedule.
    from mmjax.kernels import flash_gpu

    seen = []
    forward = flash_gpu.forward
    monkeypatch.setattr(flash_gpu, "forward", lambda cfg, *a: seen.append(cfg.dense) or forward(cfg, *a))
    q, k, v = qkv(5, lq=32, lk=48)
    flash = functools.partial(flash_attention, lowering="gpu", block_sizes=TILES)
    flash(q, k, v)
    flash(q[:, :30], k, v, key_lengths=jnp.array([48, 40]))
    assert seen == [True, False]
    ours = value_and_grads(flash, q, k, v)
    theirs = value_and_grads(reference_attention, q, k, v)
    assert_close(ours[0], theirs[0], atol=2e-5)
    assert_close(ours[1], theirs[1], atol=1e-4)
