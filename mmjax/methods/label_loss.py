"""Supervised masked image modeling: a classification loss on the labels next to the masked loss.

SupMAE (Liang et al. 2022, "Supervised Masked Autoencoders Are Efficient Vision Learners")
classifies each image from its *visible* patches only: the encoder's visible patch tokens are
averaged (global pooling), normalized and mapped to class logits by a linear head, and the
cross-entropy on `batch["label"]` is added to MAE's reconstruction loss. It is an add-on term
of MAE (`LabelTerm`, section `supervised`, params `params["supervised"]`: `norm`, `head`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.config import ConfigError, knob
from mmjax.methods.protocol import Batch, Params
from mmjax.methods.terms import Step, Term, register_term
from mmjax.models.initializers import normal, with_axes, zeros
from mmjax.models.transformer import layer_norm


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


class LabelHead(nn.Module):
    """SupMAE's head: mean of the visible patch tokens `[B, 1 + K, D]` (cls dropped), LayerNorm, linear -> `[B, K]`."""

    num_classes: int
    layer_norm_eps: float = 1e-6

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = layer_norm(self.layer_norm_eps, jnp.float32, "norm")(jnp.mean(tokens[:, 1:], axis=1))
        return nn.Dense(
            self.num_classes,
            param_dtype=jnp.float32,
            kernel_init=with_axes(normal(0.02), ("embed", None)),
            bias_init=with_axes(zeros, (None,)),
            name="head",
        )(x)


@register_term("mae")
@dataclasses.dataclass(frozen=True)
class LabelTerm(Term):
    """SupMAE's term: `weight` times the label cross-entropy of `LabelHead` on the encoder's visible tokens."""

    section = "supervised"
    options = LabelLossOptions

    opts: LabelLossOptions = LabelLossOptions()
    layer_norm_eps: float = 1e-6

    @classmethod
    def build(cls, options: LabelLossOptions, base: Any) -> LabelTerm | None:
        return cls(options, base.model_config.layer_norm_eps) if options.enabled else None

    @property
    def head(self) -> LabelHead:
        return LabelHead(self.opts.num_classes, self.layer_norm_eps)

    def init(self, rng: jax.Array, step: Step) -> Params:
        return self.head.init(rng, step.out["encoded"])["params"]

    def logits(self, params: Params, out: dict[str, jax.Array]) -> jax.Array:
        """Class logits `[B, num_classes]` from a forward's `out["encoded"]`; `params` are the method's."""
        return self.head.apply({"params": params[self.section]}, out["encoded"])

    def loss(self, step: Step) -> tuple[jax.Array, dict[str, jax.Array]]:
        logits = self.logits(step.params, step.out)
        labels = batch_labels(step.batch, self.opts.num_classes)
        label_loss = label_cross_entropy(logits, labels, self.opts.label_smoothing)
        metrics = {"label_loss": label_loss, "label_accuracy": label_accuracy(logits, labels)}
        return self.opts.weight * label_loss, metrics


__all__ = ["LabelHead", "LabelTerm", "LabelLossOptions", "batch_labels", "label_accuracy", "label_cross_entropy"]
