"""An encoder (a ViT, or BERT) with a linear classification head: what fine-tuning trains (`mmjax.methods.finetune`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.models.bert import BertConfig, BertMLM, pool_text
from mmjax.models.config import ViTConfig
from mmjax.models.initializers import with_axes, zeros
from mmjax.models.vit import ViTEncoder

HEAD_INIT_STD = 2e-5  # MAE's fine-tuning head: trunc_normal_(std=2e-5), so the first steps start from the encoder


class ViTClassifier(nn.Module):
    """`[B, H, W, C]` -> logits float32 `[B, num_classes]`, from the `cls` token or the mean patch token.

    Parameters: `encoder` (a `ViTEncoder`, the pretrained run's; `cls_token=False` for I-JEPA's,
    which only pools `mean`) and `head` (`Dense`).
    """

    config: ViTConfig
    num_classes: int
    pool: str = "cls"
    cls_token: bool = True
    drop_path: float = 0.0  # the encoder's stochastic depth (`ViTEncoder.drop_path`)

    def setup(self):
        if self.pool == "cls" and not self.cls_token:
            raise ValueError("pool='cls' needs an encoder with a cls token; this one has none (pool='mean')")
        self.encoder = ViTEncoder(self.config, cls_token=self.cls_token, drop_path=self.drop_path)
        self.head = classification_head(self.num_classes, self.config.compute_dtype)

    def features(self, images: jax.Array) -> jax.Array:
        """Pooled encoder features `[B, D]` (`pool`: the cls token, or the mean of the patch tokens)."""
        tokens, _ = self.encoder(images)
        if self.pool == "cls":
            return tokens[:, 0]
        return jnp.mean(tokens[:, 1:] if self.cls_token else tokens, axis=1)

    def __call__(self, images: jax.Array) -> jax.Array:
        return self.head(self.features(images)).astype(jnp.float32)


class BertClassifier(nn.Module):
    """Token rows int `[B, L]` (`[CLS] text [SEP]`, then `pad_id`) -> logits float32 `[B, num_classes]`, from
    the `[CLS]` token's output or the mean of the non-padding tokens' (BERT's sequence classification,
    without the pooler's tanh layer).

    Parameters: `encoder` (a `BertMLM`, the pretrained run's; its MLM head is not called) and `head`.
    """

    config: BertConfig
    num_classes: int
    pool: str = "cls"
    pad_id: int = 0

    def setup(self):
        self.encoder = BertMLM(self.config)
        self.head = classification_head(self.num_classes, jnp.dtype(self.config.dtype))

    def features(self, input_ids: jax.Array, deterministic: bool = True) -> jax.Array:
        """Pooled encoder features `[B, D]`; `deterministic=False` applies BERT's dropout (a `dropout` rng)."""
        real = input_ids != self.pad_id
        tokens = self.encoder.encode(input_ids, real.astype(jnp.int32), deterministic=deterministic)
        return pool_text(tokens, real, self.pool)

    def __call__(self, input_ids: jax.Array, deterministic: bool = True) -> jax.Array:
        return self.head(self.features(input_ids, deterministic)).astype(jnp.float32)


class FeaturesClassifier(nn.Module):
    """Any encoder given as two functions, `init_encoder(rng) -> params` and `features(params, inputs) -> [B, ...]`
    (a pretrained method's `init` and `features`), with a linear head on the flattened features.

    Parameters: `encoder` (the encoder's whole tree, one parameter) and `head`.
    """

    init_encoder: Callable[[jax.Array], Any]
    features: Callable[[Any, jax.Array], jax.Array]
    num_classes: int

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        features = self.features(self.param("encoder", self.init_encoder), inputs)
        head = classification_head(self.num_classes, jnp.float32, name="head")
        return head(features.reshape(features.shape[0], -1).astype(jnp.float32)).astype(jnp.float32)


def classification_head(num_classes: int, dtype: jnp.dtype, name: str | None = None) -> nn.Dense:
    """The linear head, initialized near zero (MAE's fine-tuning)."""
    return nn.Dense(
        num_classes,
        name=name,
        dtype=dtype,
        param_dtype=jnp.float32,
        kernel_init=with_axes(nn.initializers.truncated_normal(HEAD_INIT_STD), ("embed", None)),
        bias_init=with_axes(zeros, (None,)),
    )


__all__ = ["HEAD_INIT_STD", "BertClassifier", "FeaturesClassifier", "ViTClassifier", "classification_head"]
