"""Supervised masked image modeling: a classification loss on the labels next to the masked loss.

SupMAE (Liang et al. 2022, "Supervised Masked Autoencoders Are Efficient Vision Learners")
classifies each image from its *visible* patches only: the encoder's visible patch tokens are
averaged (global pooling), normalized and mapped to class logits by a linear head, and the
cross-entropy on `batch["label"]` is added to MAE's reconstruction loss. The model side is
`mmjax.models.mae.MAEModel(num_classes=...)`; this module holds the knobs and the loss.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from mmjax.config import ConfigError, knob
from mmjax.methods.protocol import Batch


@dataclasses.dataclass(frozen=True)
class LabelLossOptions:
    """`supervised`: the label branch (SupMAE); `weight=0` is the self-supervised method."""

    weight: float = knob(0.0, "weight of the label cross-entropy next to the masked loss (0 = no label branch)", low=0)
    num_classes: int = knob(0, "classes of batch['label'] (the head's outputs); needed when weight > 0", low=0)
    label_smoothing: float = knob(0.0, "label smoothing of the cross-entropy", low=0, high=1, high_open=True)

    def __post_init__(self):
        if self.weight > 0 and self.num_classes < 2:
            raise ConfigError(
                f"supervised.num_classes={self.num_classes}: a label loss (supervised.weight={self.weight}) "
                "needs the number of classes (>= 2)"
            )

    @property
    def enabled(self) -> bool:
        return self.weight > 0

    @property
    def head_classes(self) -> int:
        """The label head's width: `num_classes` when the branch is on, else 0 (no head)."""
        return self.num_classes if self.enabled else 0


def batch_labels(batch: Batch, num_classes: int) -> jax.Array:
    """`batch["label"]` as int32 `[B]`; a batch without labels is a `KeyError` naming the knob."""
    if "label" not in batch:
        raise KeyError(
            f"supervised.weight > 0 reads batch['label'] [B] (classes 0..{num_classes - 1}); got keys {sorted(batch)}"
        )
    return jnp.asarray(batch["label"]).astype(jnp.int32).reshape(-1)


def label_cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
    """Mean softmax cross-entropy of float `[B, K]` logits against int `[B]` labels, smoothed by `label_smoothing`.

    The smoothed target puts `1 - s + s / K` on the label and `s / K` elsewhere.
    """
    classes = logits.shape[-1]
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    target = jax.nn.one_hot(labels, classes) * (1 - label_smoothing) + label_smoothing / classes
    return -jnp.mean(jnp.sum(target * logp, axis=-1))


def label_accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Share of `[B]` labels the `[B, K]` logits rank first."""
    return jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))


__all__ = ["LabelLossOptions", "batch_labels", "label_accuracy", "label_cross_entropy"]
