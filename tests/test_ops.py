import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmjax.ops import attention, grid_shape, patchify, sincos_1d, sincos_2d, unpatchify


@settings(max_examples=25, deadline=None)
@given(
    gh=st.integers(1, 4),
    gw=st.integers(1, 4),
    ph=st.integers(1, 4),
    pw=st.integers(1, 4),
    c=st.sampled_from([1, 2, 3, 5]),
)
def test_patchify_round_trip_and_order(gh, gw, ph, pw, c):
    images = np.random.default_rng(0).normal(size=(2, gh * ph, gw * pw, c)).astype(np.float32)
    patches = np.asarray(patchify(jnp.asarray(images), (ph, pw)))
    assert patches.shape == (2, gh * gw, ph * pw * c)
    # Patch (i, j) is number i * gw + j; its vector runs over (row, column, channel).
    for i in range(gh):
        for j in range(gw):
            block = images[:, i * ph : (i + 1) * ph, j * pw : (j + 1) * pw, :]
            np.testing.assert_array_equal(patches[:, i * gw + j], block.reshape(2, -1))
    np.testing.assert_array_equal(np.asarray(unpatchify(jnp.asarray(patches), (gh, gw), (ph, pw))), images)


def test_patchify_matches_hf_vitmae():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTMAEConfig(
        image_size=12,
        patch_size=4,
        num_channels=2,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=8,
        decoder_hidden_size=8,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=8,
    )
    model = transformers.ViTMAEForPreTraining(config)
    images = np.random.default_rng(1).normal(size=(2, 12, 12, 2)).astype(np.float32)
    theirs = model.patchify(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_array_equal(np.asarray(patchify(jnp.asarray(images), 4)), theirs)


def test_patchify_errors_name_the_problem():
    with pytest.raises(ValueError, match="not divisible by patch_size"):
        patchify(jnp.zeros((1, 10, 8, 3)), 4)
    with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
        patchify(jnp.zeros((10, 8, 3)), 4)
    with pytest.raises(ValueError, match="do not fill a 2x2 grid"):
        unpatchify(jnp.zeros((1, 5, 12)), (2, 2), 2)
    assert grid_shape((224, 160), 16) == (14, 10)


def mae_reference_sincos(grid_h: int, grid_w: int, dim: int) -> np.ndarray:
    """facebookresearch/mae get_2d_sincos_pos_embed, written out (extended to rectangles)."""

    def one_d(d, pos):
        omega = np.arange(d // 2, dtype=np.float64) / (d / 2.0)
        omega = 1.0 / 10000**omega
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    gw, gh = np.meshgrid(np.arange(grid_w, dtype=np.float64), np.arange(grid_h, dtype=np.float64))
    return np.concatenate([one_d(dim // 2, gw), one_d(dim // 2, gh)], axis=1)


@pytest.mark.parametrize(("grid", "dim"), [((14, 14), 768), ((4, 4), 32), ((3, 7), 16), ((7, 3), 64)])
def test_sincos_2d_equals_mae_formula(grid, dim):
    ours = sincos_2d(grid, dim, cls_token=True)
    assert ours.shape == (grid[0] * grid[1] + 1, dim) and ours.dtype == np.float32
    np.testing.assert_array_equal(ours[0], 0.0)
    np.testing.assert_allclose(ours[1:], mae_reference_sincos(*grid, dim), atol=1e-6)


def test_sincos_2d_for_another_resolution_is_the_same_function_of_position():
    small, large = sincos_2d((4, 4), 32), sincos_2d((6, 9), 32)
    # Position (r, c) gets the same vector whatever the grid: [1d(c) | 1d(r)].
    for r, c in [(0, 0), (2, 3), (3, 1)]:
        np.testing.assert_allclose(small[r * 4 + c], large[r * 9 + c], atol=1e-7)
        np.testing.assert_allclose(large[r * 9 + c, :16], sincos_1d(np.array([c]), 16)[0], atol=1e-7)
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d((2, 2), 30)


def test_sincos_2d_matches_hf_table():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers.models.vit_mae.modeling_vit_mae import build_2d_sinusoidal_position_embedding

    table = build_2d_sinusoidal_position_embedding(5, 5, 24, cls_token=True)
    # HF rotates its halves to MAE's [sin_w | cos_w | sin_h | cos_h] for pretrained weights.
    table = torch.cat([table[:, 12:], table[:, :12]], dim=-1).numpy()
    np.testing.assert_allclose(sincos_2d((5, 5), 24, cls_token=True), table, atol=1e-6)


def qkv(seed, b=2, lq=5, lk=7, h=3, d=4):
    ks = jax.random.split(jax.random.key(seed), 3)
    return (
        jax.random.normal(ks[0], (b, lq, h, d)),
        jax.random.normal(ks[1], (b, lk, h, d)),
        jax.random.normal(ks[2], (b, lk, h, d)),
    )


def test_attention_matches_jax_reference_with_key_lengths():
    q, k, v = qkv(0)
    lengths = jnp.array([7, 3])
    ours = attention(q, k, v, key_lengths=lengths)
    ref = jax.nn.dot_product_attention(q, k, v, key_value_seq_lengths=lengths, implementation="xla")
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(attention(q, k, v)), np.asarray(jax.nn.dot_product_attention(q, k, v)), atol=1e-5
    )


def test_attention_segments_and_fully_masked_rows():
    q, k, v = qkv(1, lq=4, lk=4)
    seg = jnp.array([[0, 0, 1, 1], [0, 1, 1, 2]])
    out = attention(q, k, v, q_segment_ids=seg, kv_segment_ids=seg)
    mask = seg[:, :, None] == seg[:, None, :]
    ref = jax.nn.dot_product_attention(q, k, v, mask=mask[:, None])
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), atol=1e-5)
    # A query whose keys are all masked gives zeros, not NaN.
    zero_len = attention(q, k, v, key_lengths=jnp.array([0, 2]))
    assert np.isfinite(np.asarray(zero_len)).all()
    np.testing.assert_array_equal(np.asarray(zero_len[0]), 0.0)
    with pytest.raises(ValueError, match="impl must be one of"):
        attention(q, k, v, impl="flash")


def test_attention_bf16_keeps_softmax_in_float32():
    q, k, v = qkv(2)
    out = attention(q.astype(jnp.bfloat16), k.astype(jnp.bfloat16), v.astype(jnp.bfloat16))
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out, np.float32), np.asarray(attention(q, k, v)), atol=5e-2)


def plain_biased_attention(q, k, v, bias, lengths=None):
    """softmax(q k^T / sqrt(d) + bias) v written out in numpy, float64."""
    q, k, v, bias = (np.asarray(a, np.float64) for a in (q, k, v, bias))
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1]) + bias
    if lengths is not None:
        logits = np.where(np.arange(k.shape[1]) < np.asarray(lengths)[:, None, None, None], logits, -np.inf)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return np.einsum("bhqk,bkhd->bqhd", weights, v)


@pytest.mark.parametrize("bias_shape", [(2, 3, 5, 7), (1, 3, 5, 7), (2, 1, 5, 7)])
def test_attention_bias_matches_a_plain_reference(bias_shape):
    from mmjax.kernels import reference_attention

    q, k, v = qkv(3)
    bias = 2.0 * jax.random.normal(jax.random.key(4), bias_shape)
    lengths = jnp.array([7, 4])
    expected = plain_biased_attention(q, k, v, bias, lengths)
    np.testing.assert_allclose(np.asarray(attention(q, k, v, bias=bias, key_lengths=lengths)), expected, atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(reference_attention(q, k, v, bias=bias, key_lengths=lengths)), expected, atol=1e-5
    )
    # `auto` takes the one implementation with a bias; the bias changes the result.
    np.testing.assert_allclose(
        np.asarray(attention(q, k, v, bias=bias, key_lengths=lengths, impl="auto")), expected, atol=1e-5
    )
    assert np.abs(np.asarray(attention(q, k, v, key_lengths=lengths)) - expected).max() > 1e-2


def test_attention_bias_is_refused_where_it_cannot_go():
    q, k, v = qkv(5)
    with pytest.raises(ValueError, match=r"model.attention_impl='pallas' cannot add an attention bias"):
        attention(q, k, v, bias=jnp.zeros((1, 3, 5, 7)), impl="pallas")
    with pytest.raises(ValueError, match=r"attention bias must be \[B or 1, H or 1, Lq, Lk\].*got \(1, 3, 7, 5\)"):
        attention(q, k, v, bias=jnp.zeros((1, 3, 7, 5)))
