"""CAPI-style online-cluster targets on I-JEPA (`capi.num_clusters`)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.methods import jepa
from mmjax.methods.cluster_targets import ClusterOptions, cluster_losses, init_clusters, sinkhorn_knopp
from tests.feature_helpers import digit_images, run_steps
from tests.test_jepa import tiny_config


def capi_config(k: int = 6):
    config = tiny_config()
    config.capi.num_clusters = k
    return config


def test_sinkhorn_balances_rows_and_columns():
    logits = 3.0 * jax.random.normal(jax.random.key(0), (60, 4))
    logits = logits.at[:, 0].add(5.0)  # one cluster would take everything under a plain softmax
    q = np.asarray(sinkhorn_knopp(logits, 20))
    np.testing.assert_allclose(q.sum(1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(q.sum(0), 15.0, rtol=1e-2)
    assert np.asarray(jax.nn.softmax(logits, -1)).sum(0)[0] > 40  # the imbalance it removes (15 balanced)
    few = np.asarray(sinkhorn_knopp(logits, 1))
    np.testing.assert_allclose(few.sum(1), 1.0, rtol=1e-4)  # the last step normalizes rows


def reference_sinkhorn(scores: np.ndarray, iters: int, eps: float = 1e-8) -> np.ndarray:
    """A transcription of facebookresearch/capi's `sinkhorn_knopp` over `[..., n, p]` (float64): each column
    shifted to a maximum of 50 before `exp`, then columns and rows normalized in turn, with its epsilon."""
    m = np.exp(scores + 50.0 - scores.max(axis=-2, keepdims=True))
    for _ in range(iters):
        m = m / (m.sum(axis=-2, keepdims=True) + eps)
        m = m / (m.sum(axis=-1, keepdims=True) + eps)
    return m


def test_sinkhorn_stays_finite_where_a_cluster_is_far_from_every_token():
    # Before: exp(logits - global max) underflowed to 0 in the far cluster's whole column at a small
    # temperature, and the column normalization divided 0 by 0: NaN targets, as the issue measured near
    # `capi.teacher_temp=0.02`. The reference shifts each column by its own maximum and stays finite.
    similarity = jax.random.uniform(jax.random.key(0), (16, 4), minval=0.5, maxval=1.0)
    similarity = similarity.at[:, 3].set(-1.0)  # a prototype opposite every feature
    for temp in (0.05, 0.02, 0.01):
        q = np.asarray(sinkhorn_knopp(similarity / temp, 3))
        assert np.isfinite(q).all(), temp
        np.testing.assert_allclose(q.sum(1), 1.0, rtol=1e-5)
        reference = reference_sinkhorn(np.asarray(similarity, np.float64) / temp, 3)
        np.testing.assert_allclose(q, reference, atol=1e-5)


@pytest.mark.parametrize("positionwise", [True, False])
def test_the_losses_match_a_transcription_of_the_reference(positionwise):
    opts = ClusterOptions(
        num_clusters=3, sinkhorn_iters=3, teacher_temp=0.5, student_temp=0.2, positionwise=positionwise
    )
    params = init_clusters(jax.random.key(0), 4, 3)
    params["prototypes"] = jax.random.normal(jax.random.key(1), (4, 3))
    pred = jax.random.normal(jax.random.key(2), (2, 1, 2, 4))
    teacher = jax.random.normal(jax.random.key(3), (2, 5, 4))
    ids = jnp.asarray([[[0, 3]], [[4, 1]]])
    valid = jnp.asarray([[[True, True]], [[True, False]]])
    predicted, clustering, _ = cluster_losses(opts, params, pred, teacher, ids, valid)
    t = np.asarray(teacher) / np.linalg.norm(np.asarray(teacher), axis=-1, keepdims=True)
    p = np.asarray(params["prototypes"]) / np.linalg.norm(np.asarray(params["prototypes"]), axis=0, keepdims=True)
    sim = t @ p  # [B=2, N=5, K=3]
    if positionwise:  # the reference's default: the teacher's patches come in as [N, B, D]
        q = reference_sinkhorn(sim.transpose(1, 0, 2) / 0.5, 3).transpose(1, 0, 2)
        np.testing.assert_allclose(q.sum(axis=0), 2 / 3, rtol=0.1)  # each position: B/K per cluster
    else:
        q = reference_sinkhorn(sim.reshape(10, 3) / 0.5, 3).reshape(2, 5, 3)

    def log_softmax(x):
        return x - np.log(np.exp(x).sum(-1, keepdims=True))

    own = -(q * log_softmax(sim / 0.2)).sum(-1).mean()
    logits = (np.asarray(pred) @ np.asarray(params["head"]["kernel"])) / 0.2
    ce = [-(q[b, ids[b, 0, j]] * log_softmax(logits[b, 0, j])).sum() for b, j in [(0, 0), (0, 1), (1, 0)]]
    np.testing.assert_allclose(float(clustering), own, rtol=1e-4)
    np.testing.assert_allclose(float(predicted), np.mean(ce), rtol=1e-4)


def test_capi_trains_its_head_and_prototypes_and_keeps_the_teacher_frozen():
    method = jepa.JEPA.from_config(capi_config())
    images = digit_images(16)
    params = jax.jit(method.init)(jax.random.key(0), {"image": images})
    assert params["clusters"]["prototypes"].shape == (16, 6)
    trainable = method.trainable(params)
    assert all(jax.tree.leaves(trainable["clusters"])) and not any(jax.tree.leaves(trainable["target_encoder"]))
    _, metrics = method.loss(params, {"image": images}, jax.random.key(1))
    assert {"prediction_loss", "clustering_loss", "cluster_perplexity"} <= set(metrics)
    assert 1.0 <= float(metrics["cluster_perplexity"]) <= 6.0 + 1e-4
    _, trained, losses = run_steps(method, capi_config().train, params, images, 20)
    assert np.isfinite(losses).all() and np.mean(losses[-4:]) < np.mean(losses[:4])
    for name in ("prototypes",):
        assert not np.allclose(np.asarray(trained["clusters"][name]), np.asarray(params["clusters"][name]))


def test_a_bad_temperature_is_named():
    config = capi_config()
    config.capi.teacher_temp = 0.0
    with pytest.raises(ValueError, match="capi.teacher_temp"):
        jepa.JEPA.from_config(config)
