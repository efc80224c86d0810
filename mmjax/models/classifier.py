"""A ViT encoder with a linear classification head: what fine-tuning trains (`mmjax.methods.finetune`)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

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
        self.head = nn.Dense(
            self.num_classes,
            dtype=self.config.compute_dtype,
            param_dtype=jnp.float32,
            kernel_init=with_axes(nn.initializers.truncated_normal(HEAD_INIT_STD), ("embed", None)),
            bias_init=with_axes(zeros, (None,)),
        )

    def features(self, images: jax.Array) -> jax.Array:
        """Pooled encoder features `[B, D]` (`pool`: the cls token, or the mean of the patch tokens)."""
        tokens = self.encoder(images)
        if self.pool == "cls":
            return tokens[:, 0]
        return jnp.mean(tokens[:, 1:] if self.cls_token else tokens, axis=1)

    def __call__(self, images: jax.Array) -> jax.Array:
        return self.head(self.features(images)).astype(jnp.float32)


__all__ = ["HEAD_INIT_STD", "ViTClassifier"]
