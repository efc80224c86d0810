"""Transformers over continuous tokens (GIVT, MAR): latents `[B, N, C]` in, one feature per token out.

A linear projection replaces the codebook lookup (GIVT). The features `[B, N, W]` are read by a
per-token head (`GMMHead` or `DiffusionHead`), which lives outside this module. Three layouts:

- `causal` (GIVT-causal; PAR / MAGI-style next-block prediction when `block_size > 1`): the
  sequence is `block_size` start tokens (the class embedding plus their positions) followed by the
  tokens shifted right by one block, under `block_causal_mask`, so the output at position `i`
  sees only the blocks before `i`'s.
- `masked`, `decoder_depth == 0` (GIVT-masked): `buffer_size` class tokens, then every token
  with unknown ones replaced by a learned mask embedding; full attention.
- `masked`, `decoder_depth > 0` (MAR): an MAE-style encoder over the class buffer and the known
  tokens (unknown ones are never keys, the same result as dropping them), then a decoder that puts
  mask tokens at the unknown positions, with its own positions, and full attention. MAR adds one
  more learned position embedding to the decoder's output before the diffusion head.

Dropout (GIVT 0.1-0.4, MAR 0.1) is left out.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.models.config import TransformerConfig
from mmjax.models.initializers import normal, with_axes, xavier_uniform, zeros
from mmjax.models.transformer import TransformerStack, layer_norm
from mmjax.ops.attention_masks import block_causal_mask

LAYOUTS = ("causal", "masked")


def _dense(features: int, name: str, dtype) -> nn.Dense:
    return nn.Dense(
        features,
        dtype=dtype,
        param_dtype=jnp.float32,
        kernel_init=with_axes(xavier_uniform(), (None, "embed")),
        bias_init=with_axes(zeros, ("embed",)),
        name=name,
    )


class LatentTransformer(nn.Module):
    """Continuous tokens (+ a class label) -> float32 features `[B, N, width]`.

    Attributes:
      num_tokens: N; latent_dim: C.
      num_classes: K labels; label K is the null class (classifier-free guidance).
      style: `causal` or `masked`.
      block_size: tokens per block of `causal`.
      buffer_size: class tokens in front of a `masked` sequence (MAR: 64).
      transformer: the blocks (`depth` of them; of the encoder when `decoder_depth` > 0).
      decoder_depth: > 0 makes `masked` an encoder-decoder (MAR) with `transformer.depth` encoder blocks.
    """

    num_tokens: int
    latent_dim: int
    num_classes: int
    width: int
    transformer: TransformerConfig
    style: str = "masked"
    block_size: int = 1
    buffer_size: int = 1
    decoder_depth: int = 0

    def _stack(self, depth: int, name: str) -> TransformerStack:
        return TransformerStack(config=dataclasses.replace(self.transformer, depth=depth), name=name)

    def _pos(self, name: str, length: int) -> jax.Array:
        return self.param(name, with_axes(normal(0.02), (None, None, "embed")), (1, length, self.width))

    def _class_tokens(self, labels: jax.Array | None, batch: int, count: int) -> jax.Array:
        """`[B, count, W]` copies of each label's embedding (the null class when `labels` is None)."""
        embed = nn.Embed(
            self.num_classes + 1,
            self.width,
            embedding_init=with_axes(normal(0.02), (None, "embed")),
            name="class_embed",
        )
        labels = jnp.full((batch,), self.num_classes, jnp.int32) if labels is None else labels.astype(jnp.int32)
        return jnp.broadcast_to(embed(labels)[:, None].astype(jnp.float32), (batch, count, self.width))

    @nn.compact
    def __call__(
        self, tokens: jax.Array, hidden: jax.Array | None = None, labels: jax.Array | None = None
    ) -> jax.Array:
        """Features for every token position.

        Args:
          tokens: float `[B, N, C]` (values at hidden positions are ignored).
          hidden: bool `[B, N]`, True = unknown (`masked` only; None = all known).
          labels: int `[B]` in `[0, num_classes]`; None = the null class.

        Returns:
          float32 `[B, N, width]`; in `causal`, position `i`'s feature depends only on the blocks before it.
        """
        batch, num_tokens, channels = tokens.shape
        if (num_tokens, channels) != (self.num_tokens, self.latent_dim):
            raise ValueError(f"tokens must be [B, {self.num_tokens}, {self.latent_dim}]; got {tokens.shape}")
        if self.style not in LAYOUTS:
            raise ValueError(f"model style must be one of {LAYOUTS}, got {self.style!r}")
        x = _dense(self.width, "token_proj", jnp.float32)(tokens.astype(jnp.float32))
        if self.style == "causal":
            return self._causal(x, labels)
        hidden = jnp.zeros((batch, num_tokens), bool) if hidden is None else hidden
        prefix = self._class_tokens(labels, batch, self.buffer_size)
        if self.decoder_depth == 0:
            mask_embed = self.param("mask_embed", with_axes(normal(0.02), ("embed",)), (self.width,))
            x = jnp.where(hidden[..., None], mask_embed, x)
        x = jnp.concatenate([prefix, x], axis=1) + self._pos("pos_embed", self.buffer_size + num_tokens)
        x = layer_norm(self.transformer.layer_norm_eps, jnp.float32, "embed_norm")(x)
        if self.decoder_depth == 0:
            x = self._stack(self.transformer.depth, "blocks")(x)[0]
            return layer_norm(self.transformer.layer_norm_eps, jnp.float32, "norm")(x)[:, self.buffer_size :].astype(
                jnp.float32
            )
        return self._encoder_decoder(x, hidden)

    def _causal(self, x: jax.Array, labels: jax.Array | None) -> jax.Array:
        batch, num_tokens, _ = x.shape
        b = self.block_size
        if num_tokens % b:
            raise ValueError(f"model block_size={b} must divide the {num_tokens} tokens")
        x = jnp.concatenate([self._class_tokens(labels, batch, b), x[:, : num_tokens - b]], axis=1)
        x = layer_norm(self.transformer.layer_norm_eps, jnp.float32, "embed_norm")(
            x + self._pos("pos_embed", num_tokens)
        )
        x = self._stack(self.transformer.depth, "blocks")(x, mask=block_causal_mask(num_tokens, b))[0]
        return layer_norm(self.transformer.layer_norm_eps, jnp.float32, "norm")(x).astype(jnp.float32)

    def _encoder_decoder(self, x: jax.Array, hidden: jax.Array) -> jax.Array:
        batch, length, _ = x.shape
        visible = jnp.concatenate([jnp.ones((batch, self.buffer_size), bool), ~hidden], axis=1)
        keys = jnp.broadcast_to(visible[:, None, :], (batch, length, length))
        x = self._stack(self.transformer.depth, "encoder")(x, mask=keys)[0]
        x = layer_norm(self.transformer.layer_norm_eps, jnp.float32, "encoder_norm")(x)
        x = _dense(self.width, "decoder_embed", self.transformer.compute_dtype)(x).astype(jnp.float32)
        mask_token = self.param("mask_token", with_axes(normal(0.02), ("embed",)), (self.width,))
        x = jnp.where(visible[..., None], x, mask_token) + self._pos("decoder_pos_embed", length)
        x = self._stack(self.decoder_depth, "decoder")(x)[0]
        x = layer_norm(self.transformer.layer_norm_eps, jnp.float32, "decoder_norm")(x)[:, self.buffer_size :]
        return (x + self._pos("head_pos_embed", self.num_tokens)).astype(jnp.float32)


__all__ = ["LAYOUTS", "LatentTransformer"]
