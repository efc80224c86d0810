"""`mmjax.ops.attention` dispatch: names, errors, the pallas path, and the MAE model on it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.methods import build_method, mae
from mmjax.ops import attention
from mmjax.ops.attention import IMPLEMENTATIONS, choose_impl


def qkv(seed, b=2, lq=6, lk=9, h=2, d=8, dtype=jnp.float32):
    ks = jax.random.split(jax.random.key(seed), 3)
    shapes = [(b, lq, h, d), (b, lk, h, d), (b, lk, h, d)]
    return [jax.random.normal(key, shape).astype(dtype) for key, shape in zip(ks, shapes, strict=True)]


def test_auto_picks_as_documented():
    pick = choose_impl
    bf16, f32 = jnp.bfloat16, jnp.float32
    assert IMPLEMENTATIONS == ("xla", "cudnn", "pallas", "auto")
    assert pick("auto", platform="cpu", dtype=bf16, head_dim=64) == "xla"
    assert pick("auto", platform="cpu", dtype=f32, head_dim=64, has_mask=True) == "xla"
    assert pick("auto", platform="tpu", dtype=bf16, head_dim=64) == "pallas"
    assert pick("auto", platform="tpu", dtype=f32, head_dim=40, has_segments=True) == "pallas"
    assert pick("auto", platform="gpu", dtype=bf16, head_dim=64) == "cudnn"
    assert pick("auto", platform="gpu", dtype=jnp.float16, head_dim=128) == "cudnn"
    assert pick("auto", platform="gpu", dtype=bf16, head_dim=64, has_segments=True) == "pallas"
    assert pick("auto", platform="gpu", dtype=bf16, head_dim=64, has_mask=True) == "pallas"
    assert pick("auto", platform="gpu", dtype=bf16, head_dim=256) == "xla"
    assert pick("auto", platform="gpu", dtype=f32, head_dim=64) == "xla"
    for name in ("xla", "pallas"):
        assert pick(name, platform="cpu", dtype=f32, head_dim=8) == name
    assert pick("cudnn", platform="gpu", dtype=bf16, head_dim=64) == "cudnn"


def test_bad_names_and_cudnn_off_gpu_fail_clearly():
    q, k, v = qkv(0)
    with pytest.raises(ValueError, match=r"impl must be one of \('xla', 'cudnn', 'pallas', 'auto'\), got 'flash'"):
        attention(q, k, v, impl="flash")
    with pytest.raises(ValueError, match="impl must be one of .* got 'Pallas'"):
        choose_impl("Pallas", platform="gpu", dtype=jnp.float32, head_dim=8)
    if jax.default_backend() != "gpu":
        with pytest.raises(ValueError, match="impl='cudnn' needs a GPU, but the platform is 'cpu'"):
            attention(q, k, v, impl="cudnn")
    config = mae.default_config()
    config.model.update(size=None, image_size=16, patch_size=4, width=32, depth=1, heads=4, mlp_dim=64)
    config.model.attention_impl = "triton"
    with pytest.raises(ValueError, match="model.attention_impl='triton': expected one of .*'pallas'"):
        build_method(config)


def test_pallas_and_auto_match_xla_with_every_mask_fact():
    q, k, v = qkv(1)
    seg_q = jnp.array([[0, 0, 0, 1, 1, 1], [0, 1, 1, 1, 2, 2]])
    seg_k = jnp.array([[0, 0, 0, 0, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 2, 2, 2]])
    mask = jax.random.bernoulli(jax.random.key(2), 0.7, (2, 2, 6, 9))
    facts = dict(key_lengths=jnp.array([0, 8]), q_segment_ids=seg_q, kv_segment_ids=seg_k, mask=mask)
    want = attention(q, k, v, impl="xla", **facts)
    for impl in ("pallas", "auto"):
        got = attention(q, k, v, impl=impl, **facts)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=2e-5)
    np.testing.assert_array_equal(np.asarray(want[0]), 0.0)


def tiny_config(impl):
    config = mae.default_config()
    config.model.update(size=None, image_size=16, patch_size=4, channels=3, width=32, depth=1, heads=4, mlp_dim=64)
    config.decoder.update(width=16, depth=1, heads=2, mlp_dim=32)
    config.model.attention_impl = impl
    return config


def test_mae_loss_and_gradients_are_the_same_with_pallas_as_with_xla():
    images = {"image": jax.random.normal(jax.random.key(0), (2, 16, 16, 3))}
    results = {}
    for impl in ("xla", "pallas"):
        method = build_method(tiny_config(impl))
        params = method.init(jax.random.key(1), images)
        loss_fn = lambda p, m=method: m.loss(p, images, jax.random.key(2), True)[0]  # noqa: E731
        results[impl] = jax.jit(jax.value_and_grad(loss_fn))(params)
    (loss_x, grads_x), (loss_p, grads_p) = results["xla"], results["pallas"]
    np.testing.assert_allclose(float(loss_p), float(loss_x), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(grads_p), jax.tree.leaves(grads_x), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-4)


def test_cudnn_path_pads_odd_lengths_and_masks_the_padding(monkeypatch):
    """The cuDNN wrapper's padding logic, run on CPU with XLA standing in for cuDNN."""
    import importlib

    from mmjax.kernels import reference_attention
    from mmjax.ops.attention import cudnn_padded_length

    attention_module = importlib.import_module("mmjax.ops.attention")

    assert [cudnn_padded_length(n) for n in (197, 50, 1, 256, 9)] == [200, 50, 8, 256, 16]
    shapes = []
    real = jax.nn.dot_product_attention

    def stand_in(q, k, v, *, implementation, **kwargs):
        assert implementation == "cudnn"
        shapes.append((q.shape[1], k.shape[1]))
        return real(q, k, v, implementation="xla", **kwargs)

    monkeypatch.setattr(attention_module.jax.nn, "dot_product_attention", stand_in)
    q, k, v = qkv(5, lq=197, lk=197, d=8)
    rng = np.random.default_rng(0)
    cases = [
        {},
        {"key_lengths": jnp.array([0, 120])},
        {"mask": jnp.asarray(rng.random((2, 197, 197)) < 0.7)},
    ]
    for facts in cases:
        ours, grads = jax.value_and_grad(
            lambda q, k, v, facts=facts: attention_module._cudnn_attention(
                q, k, v, facts.get("key_lengths"), None, None, facts.get("mask"), 8**-0.5
            ).sum(),
            argnums=(0, 1, 2),
        )(q, k, v)
        want, want_grads = jax.value_and_grad(
            lambda q, k, v, facts=facts: reference_attention(q, k, v, **facts).sum(), argnums=(0, 1, 2)
        )(q, k, v)
        np.testing.assert_allclose(ours, want, rtol=1e-4, atol=1e-4)
        for a, b in zip(grads, want_grads, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert set(shapes) == {(200, 200)}
