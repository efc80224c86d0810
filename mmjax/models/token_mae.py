"""Modality-free MAE parts: an encoder and a decoder over token embeddings.

Video tubelets, spectrogram patches, series patches, point groups and table cells all
become `[B, N, D]` token embeddings (position already added) before these modules; the
modality keeps only its tokenizer (patch embedding) and its prediction target.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.masking.tokens import gather_tokens, restore_with_mask_tokens
from mmjax.models.initializers import normal, with_axes, xavier_uniform, zeros
from mmjax.models.transformer import TransformerStack, layer_norm
from mmjax.ops.attention import DEFAULT_IMPLEMENTATION


class TokenEncoder(nn.Module):
    """Pre-LN transformer over (optionally only the kept) tokens, a cls token first, final LayerNorm.

    Attributes:
      width, depth, heads, mlp_dim: transformer size; tokens must be `width` wide.
      cls_token: prepend a learned cls token (output row 0).
      final_norm: end with a LayerNorm (`norm`); False returns the last block's output (HF PatchTST).
      dtype, attention_impl, remat, scan, layer_norm_eps, qkv_bias: as `TransformerStack`.
    """

    width: int
    depth: int
    heads: int
    mlp_dim: int
    cls_token: bool = True
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    dtype: str = "float32"
    attention_impl: str = DEFAULT_IMPLEMENTATION
    remat: str = "none"
    scan: bool = False
    final_norm: bool = True

    @nn.compact
    def __call__(
        self, tokens: jax.Array, ids_keep: jax.Array | None = None, key_lengths: jax.Array | None = None
    ) -> jax.Array:
        """`[B, N, D]` embedded tokens (+ positions), `ids_keep` int `[B, K]` -> `[B, (1 +) K, D]`.

        `key_lengths` int `[B]`: only the first that many kept tokens are real (the rest are padding
        that no token attends to; I-JEPA's contexts are cut to the shortest of the batch); the cls
        row, if any, is always a key.
        """
        if tokens.shape[-1] != self.width:
            raise ValueError(f"tokens must be [B, N, {self.width}] (encoder width); got {tokens.shape}")
        x = tokens if ids_keep is None else gather_tokens(tokens, ids_keep)
        x = x.astype(jnp.float32)
        if self.cls_token:
            cls = self.param("cls_token", with_axes(normal(0.02), (None, None, "embed")), (1, 1, self.width))
            x = jnp.concatenate([jnp.broadcast_to(cls, (x.shape[0], 1, self.width)), x], axis=1)
        x, _ = TransformerStack(
            self.depth,
            self.heads,
            self.mlp_dim,
            self.layer_norm_eps,
            self.qkv_bias,
            jnp.dtype(self.dtype),
            self.attention_impl,
            self.remat,
            self.scan,
            name="blocks",
        )(x, None if key_lengths is None else key_lengths + int(self.cls_token))
        return layer_norm(self.layer_norm_eps, jnp.float32, "norm")(x) if self.final_norm else x


class TokenDecoder(nn.Module):
    """MAE decoder over any token grid: project, insert mask tokens, add positions, blocks, predict.

    Attributes:
      width, depth, heads, mlp_dim: decoder size.
      out_dim: size of each token's prediction (e.g. `t * p * p * C` pixels of a tubelet).
      cls_token: whether the encoder output has a cls row first (it is dropped from the output).
      embed_bias: whether the encoder-to-decoder projection has a bias (HF VideoMAE's has none).
      norm_eps: the final LayerNorm's eps; None = `layer_norm_eps` (HF VideoMAE's is 1e-5).
    """

    width: int
    depth: int
    heads: int
    mlp_dim: int
    out_dim: int
    cls_token: bool = True
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    dtype: str = "float32"
    attention_impl: str = DEFAULT_IMPLEMENTATION
    embed_bias: bool = True
    norm_eps: float | None = None

    @nn.compact
    def __call__(self, latent: jax.Array, ids_restore: jax.Array, positions: jax.Array) -> jax.Array:
        """Predict every token.

        Args:
          latent: `[B, (1 +) K, D_enc]` encoder output on the kept tokens.
          ids_restore: int `[B, N]` (the `Mask` convention).
          positions: `[N, width]` or `[B, N, width]` decoder position embeddings of all tokens.

        Returns:
          float32 `[B, N, out_dim]`.
        """
        dtype = jnp.dtype(self.dtype)
        x = nn.Dense(
            self.width,
            dtype=dtype,
            param_dtype=jnp.float32,
            kernel_init=with_axes(xavier_uniform(), (None, "embed")),
            bias_init=with_axes(zeros, ("embed",)),
            use_bias=self.embed_bias,
            name="embed",
        )(latent)
        kept = x[:, 1:] if self.cls_token else x
        token = self.param("mask_token", with_axes(normal(0.02), (None, None, "embed")), (1, 1, self.width))
        x = restore_with_mask_tokens(kept, token, ids_restore).astype(jnp.float32) + positions
        x, _ = TransformerStack(
            self.depth,
            self.heads,
            self.mlp_dim,
            self.layer_norm_eps,
            self.qkv_bias,
            dtype,
            self.attention_impl,
            name="blocks",
        )(x)
        norm_eps = self.layer_norm_eps if self.norm_eps is None else self.norm_eps
        x = layer_norm(norm_eps, dtype, "norm")(x)
        pred = nn.Dense(
            self.out_dim,
            dtype=dtype,
            param_dtype=jnp.float32,
            kernel_init=with_axes(xavier_uniform(), ("embed", None)),
            bias_init=with_axes(zeros, (None,)),
            name="pred",
        )(x)
        return pred.astype(jnp.float32)
