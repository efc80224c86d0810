"""Online-cluster targets (CAPI, Darcet et al. 2025, "Cluster and Predict Latent Patches for Improved
Masked Image Modeling"): hidden patches predict which cluster the EMA teacher's feature falls in.

On I-JEPA (`jepa.py`, section `capi`): the target encoder's LayerNorm-ed patch features, l2
normalized, meet K learned, l2-normalized prototypes; Sinkhorn-Knopp turns those similarities
into balanced soft assignments (the targets, no gradient), for each patch position over the
batch as CAPI's `positionwise_sk` (or over every patch of the batch, `capi.positionwise=False`); the
predictor's outputs at the target positions go through a linear head to K logits, and the
loss is the cross-entropy against the assignments. The prototypes learn from a clustering loss
of their own: the teacher's softmax over them against the same assignments (the teacher's
features are constant there, so only the prototypes move). Simplifications, as this library
reads the paper: I-JEPA's predictor (self-attention over context and mask tokens) instead of
CAPI's cross-attention predictor, and one prototype set shared by both losses.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from mmjax.config import knob
from mmjax.losses import masked_mean
from mmjax.methods.protocol import Params


@dataclasses.dataclass(frozen=True)
class ClusterOptions:
    """`capi`: predict online clusters of the teacher's patches; `num_clusters=0` is I-JEPA's regression."""

    num_clusters: int = knob(0, "K prototypes (CAPI); 0 = regress the teacher's features (I-JEPA)", low=0)
    sinkhorn_iters: int = knob(3, "Sinkhorn-Knopp normalization rounds", low=1)
    teacher_temp: float = knob(0.05, "temperature of the similarities Sinkhorn-Knopp balances", low=0, low_open=True)
    student_temp: float = knob(
        0.1, "temperature of the predicted and the prototypes' own softmax", low=0, low_open=True
    )
    cluster_weight: float = knob(1.0, "weight of the prototypes' clustering loss", low=0)
    positionwise: bool = knob(
        True, "balance the clusters over the batch at each patch position (CAPI's); False: over all patches"
    )

    @property
    def enabled(self) -> bool:
        return self.num_clusters > 0


def sinkhorn_knopp(logits: jax.Array, iters: int) -> jax.Array:
    """Balanced soft assignments of `[..., T, K]` logits: each row sums to 1 and each column to about T / K.

    In log space: a cluster far from every token (its column's `exp` all below float32's range at a
    small temperature) stays finite, as the reference's per-column shift keeps it.
    """
    log_q = logits
    for _ in range(iters):
        log_q = log_q - jax.nn.logsumexp(log_q, axis=-2, keepdims=True)  # columns: each cluster's mass
        log_q = log_q - jax.nn.logsumexp(log_q, axis=-1, keepdims=True)  # rows: each token's assignment
    return jnp.exp(log_q)


def init_clusters(rng: jax.Array, dim: int, num_clusters: int) -> Params:
    """`{"prototypes": [D, K], "head": {"kernel": [D, K], "bias": [K]}}`, normal(0.02) weights."""
    a, b = jax.random.split(rng)
    return {
        "prototypes": 0.02 * jax.random.normal(a, (dim, num_clusters)),
        "head": {"kernel": 0.02 * jax.random.normal(b, (dim, num_clusters)), "bias": jnp.zeros((num_clusters,))},
    }


def _unit(x: jax.Array, axis: int) -> jax.Array:
    return x / jnp.maximum(jnp.linalg.norm(x, axis=axis, keepdims=True), 1e-6)


def cluster_losses(
    options: ClusterOptions,
    params: Params,
    pred: jax.Array,
    teacher: jax.Array,
    target_ids: jax.Array,
    valid: jax.Array,
) -> tuple[jax.Array, jax.Array, dict[str, jax.Array]]:
    """(prediction loss, clustering loss, metrics).

    Args:
      params: `init_clusters`'s pytree.
      pred: `[B, M, T, D]` the predictor's outputs at the target positions.
      teacher: `[B, N, D]` the target encoder's LayerNorm-ed patch features (no gradient).
      target_ids: int `[B, M, T]` grid positions of the targets; valid: bool `[B, M, T]`.
    """
    b, n, d = teacher.shape
    prototypes = _unit(params["prototypes"], axis=0)
    similarity = _unit(jax.lax.stop_gradient(teacher), axis=-1) @ prototypes  # [B, N, K]
    scores = jax.lax.stop_gradient(similarity) / options.teacher_temp
    if options.positionwise:  # [N, B, K]: each position's B patches share the K clusters
        assign = sinkhorn_knopp(scores.transpose(1, 0, 2), options.sinkhorn_iters).transpose(1, 0, 2)
    else:
        assign = sinkhorn_knopp(scores.reshape(b * n, -1), options.sinkhorn_iters).reshape(b, n, -1)
    assign = jax.lax.stop_gradient(assign)
    own = -jnp.sum(assign * jax.nn.log_softmax(similarity / options.student_temp, axis=-1), axis=-1)
    cluster_loss = jnp.mean(own)
    picked = jax.vmap(lambda a, ids: a[ids])(assign, target_ids)  # [B, M, T, K]
    logits = (pred @ params["head"]["kernel"] + params["head"]["bias"]) / options.student_temp
    per_token = -jnp.sum(picked * jax.nn.log_softmax(logits, axis=-1), axis=-1)
    usage = jnp.mean(assign.reshape(b * n, -1), axis=0)
    perplexity = jnp.exp(-jnp.sum(usage * jnp.log(usage + 1e-12)))
    return masked_mean(per_token, valid), cluster_loss, {"cluster_perplexity": perplexity}


__all__ = ["ClusterOptions", "cluster_losses", "init_clusters", "sinkhorn_knopp"]
