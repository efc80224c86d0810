"""The real GPU lowering (compiled Triton, no interpret mode) and cuDNN; skipped without a GPU.

Run on a GPU machine with `JAX_PLATFORMS=cuda pytest -m gpu tests/test_kernels_gpu.py`
(`benchmarks/gpu_suite.sh` does this).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.kernels import block_causal_mask, flash_attention, reference_attention
from mmjax.ops import attention
from mmjax.ops.attention import choose_impl

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(jax.devices()[0].platform != "gpu", reason="needs a GPU"),
]


def qkv(seed, b, lq, lk, h, d, dtype):
    ks = jax.random.split(jax.random.key(seed), 3)
    return [
        jax.random.normal(key, shape).astype(dtype)
        for key, shape in zip(ks, [(b, lq, h, d), (b, lk, h, d), (b, lk, h, d)], strict=True)
    ]


def value_and_grads(fn, q, k, v, **facts):
    weights = jax.random.normal(jax.random.key(9), q.shape, jnp.float32)

    def loss(q, k, v):
        out = fn(q, k, v, **facts)
        return (out.astype(jnp.float32) * weights).sum(), out

    (_, out), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))(q, k, v)
    return out, grads


def check(ours, theirs, atol, rtol):
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, atol=atol, rtol=rtol)


def facts_for(kind, b, lq, lk):
    rng = np.random.default_rng(0)
    seg_q = np.sort(rng.integers(0, 4, (b, lq)), axis=1)
    seg_k = np.sort(rng.integers(0, 4, (b, lk)), axis=1)
    return {
        "none": {},
        "key_lengths": {"key_lengths": jnp.array([0, lk // 3][:b])},
        "segments": {"q_segment_ids": jnp.asarray(seg_q), "kv_segment_ids": jnp.asarray(seg_k)},
        "block_causal": {"mask": jnp.asarray(block_causal_mask(lq, lk, 64))},
        "all": {
            "key_lengths": jnp.array([lk // 2, lk][:b]),
            "q_segment_ids": jnp.asarray(seg_q),
            "kv_segment_ids": jnp.asarray(seg_k),
            "mask": jnp.asarray(rng.random((b, lq, lk)) < 0.8),
        },
    }[kind]


@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("kind", ["none", "key_lengths", "segments", "block_causal", "all"])
def test_compiled_gpu_kernel_float32(kind, head_dim):
    b, lq, lk = 2, 300, 461
    q, k, v = qkv(0, b, lq, lk, 2, head_dim, jnp.float32)
    facts = facts_for(kind, b, lq, lk)
    flash = functools.partial(flash_attention, lowering="gpu", interpret=False)
    ours = value_and_grads(flash, q, k, v, **facts)
    theirs = value_and_grads(reference_attention, q, k, v, **facts)
    check(ours, theirs, atol=2e-4, rtol=1e-3)


@pytest.mark.parametrize("kind", ["none", "key_lengths", "all"])
def test_compiled_gpu_kernel_bfloat16(kind):
    b, lq, lk = 2, 512, 512
    q, k, v = qkv(1, b, lq, lk, 4, 64, jnp.bfloat16)
    facts = facts_for(kind, b, lq, lk)
    flash = functools.partial(flash_attention, lowering="gpu", interpret=False)
    out, grads = value_and_grads(flash, q, k, v, **facts)
    ref = value_and_grads(reference_attention, *(x.astype(jnp.float32) for x in (q, k, v)), **facts)
    check(out, ref[0], atol=3e-2, rtol=3e-2)
    check(grads, ref[1], atol=1e-1, rtol=5e-2)


def test_cudnn_zero_rows_and_gradients():
    q, k, v = qkv(2, 2, 256, 256, 4, 64, jnp.bfloat16)
    facts = {"key_lengths": jnp.array([0, 100], jnp.int32)}
    cudnn = functools.partial(attention, impl="cudnn")
    out, grads = value_and_grads(cudnn, q, k, v, **facts)
    ref = value_and_grads(reference_attention, *(x.astype(jnp.float32) for x in (q, k, v)), **facts)
    np.testing.assert_array_equal(np.asarray(out[0], np.float32), 0.0)
    check(out, ref[0], atol=3e-2, rtol=3e-2)
    check(grads, ref[1], atol=1e-1, rtol=5e-2)


def test_auto_on_gpu_uses_cudnn_dense_and_pallas_sparse():
    assert choose_impl("auto", platform=jax.default_backend(), dtype=jnp.bfloat16, head_dim=64) == "cudnn"
    q, k, v = qkv(3, 2, 256, 256, 2, 64, jnp.bfloat16)
    mask = jnp.asarray(block_causal_mask(256, 256, 64))
    got = attention(q, k, v, mask=mask[None], impl="auto")
    want = reference_attention(*(x.astype(jnp.float32) for x in (q, k, v)), mask=mask)
    check(got, want, atol=3e-2, rtol=3e-2)


@pytest.mark.parametrize("kind", ["none", "key_lengths", "all"])
def test_cudnn_trains_at_odd_lengths(kind):
    # MAE's decoder runs at 197 tokens; JAX's cuDNN path refuses odd lengths when it
    # trains, so mmjax pads to a multiple of 8 and masks the padding.
    b, lq, lk = 2, 197, 197
    q, k, v = qkv(4, b, lq, lk, 4, 32, jnp.bfloat16)
    facts = facts_for(kind, b, lq, lk)
    out, grads = value_and_grads(functools.partial(attention, impl="cudnn"), q, k, v, **facts)
    ref = value_and_grads(reference_attention, *(x.astype(jnp.float32) for x in (q, k, v)), **facts)
    check(out, ref[0], atol=3e-2, rtol=3e-2)
    check(grads, ref[1], atol=1e-1, rtol=5e-2)
