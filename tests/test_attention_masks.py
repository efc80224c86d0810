"""Static attention masks (causal, block-causal, hybrid): patterns, the flash kernels, the transformer stack."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.kernels import EMPTY, FULL, PARTIAL, BlockSizes, block_states, flash_attention
from mmjax.models.config import TransformerConfig
from mmjax.models.transformer import TransformerStack, first_query_attention, stack_layers
from mmjax.ops import (
    ATTENTION_MASKS,
    attention,
    block_causal_mask,
    build_attention_mask,
    causal_mask,
    hybrid_mask,
)

B, L, H, DH = 2, 48, 2, 16
TILES = BlockSizes(16, 16)


def as_np(mask) -> np.ndarray:
    assert mask.shape[0] == 1 and mask.dtype == jnp.bool_
    return np.asarray(mask[0]).astype(int)


def test_causal_pattern():
    np.testing.assert_array_equal(as_np(causal_mask(4)), np.tril(np.ones((4, 4), int)))


def test_block_causal_pattern():
    expected = np.array(
        [
            [1, 1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1],
        ]
    )
    np.testing.assert_array_equal(as_np(block_causal_mask(6, 2)), expected)


def test_block_causal_short_last_block():
    expected = np.array(
        [
            [1, 1, 1, 0, 0],
            [1, 1, 1, 0, 0],
            [1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1],
        ]
    )
    np.testing.assert_array_equal(as_np(block_causal_mask(5, 3)), expected)


def test_hybrid_pattern():
    # Prefix 2, block 2 (at L=6 the same as block-causal: the prefix is one more block).
    np.testing.assert_array_equal(hybrid_mask(6, prefix=2, block_size=2), block_causal_mask(6, 2))
    # Prefix 3, blocks of 2 after it: [p p p][a a][b b].
    expected = np.array(
        [
            [1, 1, 1, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0, 0],
            [1, 1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1, 1],
        ]
    )
    np.testing.assert_array_equal(as_np(hybrid_mask(7, prefix=3, block_size=2)), expected)


def test_hybrid_prefix_lm():
    # Prefix 3, causal after it: the prefix is bidirectional, the rest sees it all and its past.
    got = as_np(hybrid_mask(5, prefix=3))
    expected = np.array(
        [
            [1, 1, 1, 0, 0],
            [1, 1, 1, 0, 0],
            [1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0],
            [1, 1, 1, 1, 1],
        ]
    )
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("length", [1, 5, 12])
def test_special_cases(length):
    np.testing.assert_array_equal(block_causal_mask(length, 1), causal_mask(length))
    for block in (1, 2, 5):
        np.testing.assert_array_equal(hybrid_mask(length, 0, block), block_causal_mask(length, block))
    assert as_np(hybrid_mask(length, length, 2)).all()
    assert as_np(block_causal_mask(length, length)).all()


def test_build_attention_mask():
    assert ATTENTION_MASKS == ("full", "causal", "block_causal", "hybrid")
    assert build_attention_mask("full", 6) is None
    np.testing.assert_array_equal(build_attention_mask("causal", 6), causal_mask(6))
    np.testing.assert_array_equal(build_attention_mask("block_causal", 6, block_size=2), block_causal_mask(6, 2))
    np.testing.assert_array_equal(
        build_attention_mask("hybrid", 6, prefix=2, block_size=2), hybrid_mask(6, prefix=2, block_size=2)
    )


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: build_attention_mask("sliding", 4), "attention mask kind must be one of"),
        (lambda: build_attention_mask("causal", 0), "length must be a positive int, got 0"),
        (lambda: build_attention_mask("causal", 4, prefix=1), "prefix=1 is only used by the 'hybrid'"),
        (lambda: build_attention_mask("full", 4, block_size=2), "block_size=2 needs kind"),
        (lambda: causal_mask(-1), "length must be a positive int"),
        (lambda: causal_mask(2.0), "length must be a positive int"),
        (lambda: block_causal_mask(4, 0), "block_size must be a positive int, got 0"),
        (lambda: hybrid_mask(4, prefix=5), r"prefix must be an int in \[0, length=4\], got 5"),
        (lambda: hybrid_mask(4, prefix=-1), "prefix must be an int"),
        (lambda: hybrid_mask(4, prefix=1, block_size=0), "block_size must be a positive int"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def qkv(seed: int):
    ks = jax.random.split(jax.random.key(seed), 3)
    return tuple(jax.random.normal(key, (B, L, H, DH), jnp.float32) for key in ks)


def value_and_grads(fn, q, k, v):
    """The output and the gradients w.r.t. q, k, v of a fixed random-weighted sum of it."""
    weights = jax.random.normal(jax.random.key(7), q.shape, jnp.float32)

    def loss(q, k, v):
        out = fn(q, k, v)
        return (out * weights).sum(), out

    (_, out), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))(q, k, v)
    return out, grads


MASKS = {
    "causal": causal_mask(L),
    "block_causal": block_causal_mask(L, 8),
    "hybrid": hybrid_mask(L, prefix=5, block_size=6),
}


def reference(mask):
    """Dense masked softmax attention written out, at the highest matmul precision."""

    def fn(q, k, v):
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, precision=jax.lax.Precision.HIGHEST) * DH**-0.5
        logits = jnp.where(mask[:, None], logits, -jnp.inf)
        return jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, -1), v, precision=jax.lax.Precision.HIGHEST)

    return fn


@pytest.mark.parametrize("name", sorted(MASKS))
def test_xla_matches_reference(name):
    mask = MASKS[name]
    q, k, v = qkv(1)
    ours = value_and_grads(lambda q, k, v: attention(q, k, v, mask=mask, impl="xla"), q, k, v)
    theirs = value_and_grads(reference(mask), q, k, v)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(MASKS))
def test_pallas_matches_xla(name):
    """Flash kernels (interpret mode) with a broadcast `[1, L, L]` mask: forward and gradients."""
    mask = MASKS[name]
    q, k, v = qkv(2)
    xla = value_and_grads(lambda q, k, v: attention(q, k, v, mask=mask, impl="xla"), q, k, v)
    # Through the public entry point (default tiles) and with 16 x 16 tiles, some of them empty.
    pallas = value_and_grads(lambda q, k, v: attention(q, k, v, mask=mask, impl="pallas"), q, k, v)
    tiled = value_and_grads(lambda q, k, v: flash_attention(q, k, v, mask=mask, block_sizes=TILES), q, k, v)
    for got in (pallas, tiled):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(xla), strict=True):
            assert np.isfinite(np.asarray(a)).all()
            np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


def test_pallas_masks_differ_from_unmasked():
    # Guard against a kernel that ignores the mask: the masked output is not the full one.
    q, k, v = qkv(3)
    masked = flash_attention(q, k, v, mask=MASKS["block_causal"], block_sizes=TILES)
    full = flash_attention(q, k, v, block_sizes=TILES)
    np.testing.assert_allclose(masked[:, -8:], full[:, -8:], atol=1e-5)  # the last block sees everything
    assert not np.allclose(masked[:, :8], full[:, :8], atol=1e-3)


def test_causal_tiles_are_skipped():
    states = np.asarray(block_states(L, L, 16, 16, mask=causal_mask(L)))
    assert states.shape == (1, 1, 3, 3)
    expected = np.array([[PARTIAL, EMPTY, EMPTY], [FULL, PARTIAL, EMPTY], [FULL, FULL, PARTIAL]])
    np.testing.assert_array_equal(states[0, 0], expected)
    hybrid = np.asarray(block_states(L, L, 16, 16, mask=hybrid_mask(L, prefix=16, block_size=16)))
    np.testing.assert_array_equal(hybrid[0, 0], np.where(np.tril(np.ones((3, 3))) > 0, FULL, EMPTY))


D, DEPTH, SEQ = 16, 2, 8


def stack(scan: bool) -> TransformerStack:
    return TransformerStack(config=TransformerConfig(depth=DEPTH, heads=2, mlp_dim=32, scan=scan))


@pytest.fixture(scope="module")
def stack_setup():
    x = jax.random.normal(jax.random.key(0), (B, SEQ, D))
    params = nn.meta.unbox(stack(False).init(jax.random.key(1), x)["params"])
    return x, params


def test_stack_mask_none_is_unchanged(stack_setup):
    x, params = stack_setup
    module = stack(False)
    old = module.apply({"params": params}, x)[0]
    np.testing.assert_array_equal(module.apply({"params": params}, x, None, None, None, None)[0], old)
    np.testing.assert_array_equal(module.apply({"params": params}, x, mask=None)[0], old)
    scanned = stack(True).apply({"params": stack_layers(params, DEPTH)}, x, mask=None)[0]
    np.testing.assert_allclose(scanned, old, atol=1e-5)


@pytest.mark.parametrize("scan", [False, True])
def test_stack_causal_mask(stack_setup, scan):
    x, params = stack_setup
    variables = {"params": stack_layers(params, DEPTH) if scan else params}
    module = stack(scan)
    mask = causal_mask(SEQ)
    i = 3
    perturbed = x.at[:, i + 1 :].add(jax.random.normal(jax.random.key(2), (B, SEQ - i - 1, D)))
    before = module.apply(variables, x, mask=mask)[0]
    after = module.apply(variables, perturbed, mask=mask)[0]
    np.testing.assert_allclose(after[:, : i + 1], before[:, : i + 1], atol=1e-6)
    assert not np.allclose(after[:, i + 1 :], before[:, i + 1 :], atol=1e-3)
    # Without the mask every position sees the future.
    unmasked = module.apply(variables, x)[0], module.apply(variables, perturbed)[0]
    assert not np.allclose(unmasked[1][:, : i + 1], unmasked[0][:, : i + 1], atol=1e-3)


def test_stack_scanned_matches_unrolled(stack_setup):
    x, params = stack_setup
    mask = hybrid_mask(SEQ, prefix=2, block_size=3)
    unrolled = stack(False).apply({"params": params}, x, mask=mask)[0]
    scanned = stack(True).apply({"params": stack_layers(params, DEPTH)}, x, mask=mask)[0]
    np.testing.assert_allclose(scanned, unrolled, atol=1e-5)
    assert not np.allclose(unrolled, stack(False).apply({"params": params}, x)[0], atol=1e-3)


def test_first_query_attention_with_mask():
    q, k, _ = qkv(4)
    got = first_query_attention(q, k, mask=hybrid_mask(L, prefix=5, block_size=6))
    np.testing.assert_allclose(got.sum(-1), 1.0, rtol=1e-5)
    assert np.all(np.asarray(got[:, 5:]) == 0)
    np.testing.assert_allclose(got, first_query_attention(q, k, key_lengths=jnp.full((B,), 5)), atol=1e-6)
