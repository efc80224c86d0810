"""AttMask (`mask.kind=attention_guided` on MAE): the sown [CLS] attention against its formula, the
scanned and unrolled stacks agreeing, and masks from the EMA teacher's attention."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.config import ConfigError
from mmjax.methods import build_method, simmim
from mmjax.methods.mask_teacher import teacher_inputs
from mmjax.models.config import TransformerConfig
from mmjax.models.transformer import (
    TransformerStack,
    first_query_attention,
    last_block_cls_attention,
    stack_layers,
)
from tests.feature_helpers import digit_images, run_steps
from tests.test_hpm import tiny_config as hpm_config


def test_first_query_attention_is_the_cls_rows_softmax_averaged_over_heads():
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(2, 5, 3, 4)), rng.normal(size=(2, 6, 3, 4))
    lengths = np.array([6, 4])
    got = np.asarray(first_query_attention(jnp.asarray(q), jnp.asarray(k), jnp.asarray(lengths)))
    for b in range(2):
        logits = np.einsum("hd,mhd->hm", q[b, 0], k[b]) / 2.0  # sqrt(head dim 4)
        logits[:, lengths[b] :] = -np.inf
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        np.testing.assert_allclose(got[b], (weights / weights.sum(axis=1, keepdims=True)).mean(0), rtol=1e-5)
    assert got[1, 4:].sum() == 0


def test_scanned_and_unrolled_stacks_sow_the_same_last_block_attention():
    x = jax.random.normal(jax.random.key(0), (2, 5, 8))
    unrolled = TransformerStack(config=TransformerConfig(depth=3, heads=2, mlp_dim=16))
    params = nn.meta.unbox(unrolled.init(jax.random.key(1), x)["params"])
    scanned = TransformerStack(config=TransformerConfig(depth=3, heads=2, mlp_dim=16, scan=True))
    _, a = unrolled.apply({"params": params}, x, mutable=["intermediates"])
    _, b = scanned.apply({"params": stack_layers(params, 3)}, x, mutable=["intermediates"])
    np.testing.assert_allclose(
        last_block_cls_attention(a["intermediates"], 3), last_block_cls_attention(b["intermediates"], 3), rtol=1e-5
    )


def attmask_config(mode: str = "high"):
    config = hpm_config()
    config.mask.kind = "attention_guided"
    config.mask.attention_guided.mode = mode
    return config


@pytest.fixture(scope="module")
def images():
    return digit_images(8)


def test_the_mask_hides_the_most_or_least_attended_patches(images):
    method = build_method(attmask_config())
    assert method.term("teacher") is not None and method.term("hpm") is None
    params = jax.jit(method.init)(jax.random.key(0), {"image": images})
    assert "hpm" not in params  # no loss predictor: only the teacher's attention
    attention = np.asarray(teacher_inputs(method, params, images)["attention"])
    assert attention.shape == (8, 16) and np.all(attention.sum(axis=1) < 1)  # the cls key's share dropped
    for mode, order in (("high", -attention), ("low", attention)):
        mask = np.asarray(
            build_method(attmask_config(mode)).predict(params, {"image": images}, jax.random.key(2))[1].mask
        )
        top = np.argsort(order, axis=1)[:, :12]
        assert all(set(np.flatnonzero(mask[b])) == set(top[b]) for b in range(8)), mode
    hint = np.asarray(
        build_method(attmask_config("hint")).predict(params, {"image": images}, jax.random.key(2))[1].mask
    )
    assert hint.sum(axis=1).tolist() == [12] * 8  # MAE's count, with some top patches revealed as hints


def test_attmask_trains_with_a_frozen_ema_teacher(images):
    method = build_method(attmask_config())
    params = jax.jit(method.init)(jax.random.key(0), {"image": images})
    (_, _, grads, metrics), final, losses = run_steps(method, attmask_config().train, params, images, 6)
    assert all(np.all(np.asarray(g) == 0) for g in jax.tree.leaves(grads["teacher"]))
    assert float(final["steps_seen"]) == 6 and "loss_prediction" not in metrics
    assert np.all(np.isfinite(losses))


def test_simmim_refuses_attention_guided_masks():
    config = simmim.default_config()
    config.mask.kind = "attention_guided"
    with pytest.raises(ConfigError, match=r"reads the 'attention' score map.*'simmim'"):
        build_method(config)
