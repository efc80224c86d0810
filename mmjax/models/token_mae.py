"""Modality-free MAE parts: an encoder and a decoder over token embeddings, and the decoder's pieces.

Video tubelets, spectrogram patches, series patches, point groups and table cells all
become `[B, N, D]` token embeddings (position already added) before these modules; the
modality keeps only its tokenizer (patch embedding) and its prediction target. The image
MAE (`mmjax.models.mae.MAEDecoder`) decodes with the same pieces: `decoder_embed`,
`with_mask_tokens`, then `decoder_head`, which is `models_mae.py`'s `forward_decoder`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.masking.tokens import gather_tokens, restore_with_mask_tokens
from mmjax.models.config import TransformerConfig
from mmjax.models.initializers import normal, with_axes, xavier_uniform, zeros
from mmjax.models.transformer import TransformerStack, layer_norm


def decoder_embed(latent: jax.Array, width: int, dtype: jnp.dtype, use_bias: bool = True) -> jax.Array:
    """The encoder-to-decoder projection `embed`: `[B, L, D_enc] -> [B, L, width]` (inside a compact module)."""
    return nn.Dense(
        width,
        dtype=dtype,
        param_dtype=jnp.float32,
        kernel_init=with_axes(xavier_uniform(), (None, "embed")),
        bias_init=with_axes(zeros, ("embed",)),
        use_bias=use_bias,
        name="embed",
    )(latent)


def with_mask_tokens(
    module: nn.Module, x: jax.Array, ids_restore: jax.Array, cls_token: bool, keep_cls: bool
) -> jax.Array:
    """The module's learned `mask_token` at every hidden position, the kept rows back in grid order.

    Args:
      x: `[B, (1 +) K, W]` projected encoder output, a cls row first when `cls_token`.
      ids_restore: int `[B, N]` (the `Mask` convention).
      keep_cls: the cls row stays first (MAE's decoder attends to it); otherwise it is dropped.

    Returns:
      float32 `[B, (1 +) N, W]`.
    """
    width = x.shape[-1]
    token = module.param("mask_token", with_axes(normal(0.02), (None, None, "embed")), (1, 1, width))
    tokens = restore_with_mask_tokens(x[:, 1:] if cls_token else x, token, ids_restore)
    if cls_token and keep_cls:
        tokens = jnp.concatenate([x[:, :1], tokens], axis=1)
    return tokens.astype(jnp.float32)


def decoder_head(
    x: jax.Array,
    stack: TransformerConfig,
    out: int,
    names: tuple[str, str, str] = ("blocks", "norm", "pred"),
    norm_eps: float | None = None,
) -> jax.Array:
    """Decoder blocks, LayerNorm (eps `norm_eps`, default the blocks'), linear map to `out`: `[B, L, W] -> [B, L, out]`.

    Called inside a compact module, whose submodules get `names` (blocks, norm, linear). float32 output.
    """
    blocks, norm, pred = names
    x, _ = TransformerStack(config=stack, name=blocks)(x)
    x = layer_norm(stack.layer_norm_eps if norm_eps is None else norm_eps, stack.compute_dtype, norm)(x)
    x = nn.Dense(
        out,
        dtype=stack.compute_dtype,
        param_dtype=jnp.float32,
        kernel_init=with_axes(xavier_uniform(), ("embed", None)),
        bias_init=with_axes(zeros, (None,)),
        name=pred,
    )(x)
    return x.astype(jnp.float32)


class TokenEncoder(nn.Module):
    """Pre-LN transformer over (optionally only the kept) tokens, a cls token first, final LayerNorm.

    Attributes:
      width: the tokens' width.
      transformer: the blocks (`TransformerConfig`: depth, heads, MLP, eps, dtype, attention...).
      cls_token: prepend a learned cls token (output row 0).
      final_norm: end with a LayerNorm (`norm`); False returns the last block's output (HF PatchTST).
    """

    width: int
    transformer: TransformerConfig
    cls_token: bool = True
    final_norm: bool = True

    @nn.compact
    def __call__(
        self, tokens: jax.Array, ids_keep: jax.Array | None = None, key_lengths: jax.Array | None = None
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """`[B, N, D]` embedded tokens (+ positions), `ids_keep` int `[B, K]` -> `([B, (1 +) K, D], out)`.

        `key_lengths` int `[B]`: only the first that many kept tokens are real (the rest are padding
        that no token attends to; I-JEPA's contexts are cut to the shortest of the batch); the cls
        row, if any, is always a key. `out["encoded"]` is the output; `out["block{i}"]` block i's
        (unrolled stacks), as `ViTEncoder`.
        """
        if tokens.shape[-1] != self.width:
            raise ValueError(f"tokens must be [B, N, {self.width}] (encoder width); got {tokens.shape}")
        x = tokens if ids_keep is None else gather_tokens(tokens, ids_keep)
        x = x.astype(jnp.float32)
        if self.cls_token:
            cls = self.param("cls_token", with_axes(normal(0.02), (None, None, "embed")), (1, 1, self.width))
            x = jnp.concatenate([jnp.broadcast_to(cls, (x.shape[0], 1, self.width)), x], axis=1)
        lengths = None if key_lengths is None else key_lengths + int(self.cls_token)
        x, out = TransformerStack(config=self.transformer, name="blocks")(x, lengths)
        if self.final_norm:
            x = layer_norm(self.transformer.layer_norm_eps, jnp.float32, "norm")(x)
        return x, {**out, "encoded": x}


class TokenDecoder(nn.Module):
    """MAE decoder over any token grid: project, insert mask tokens, add positions, blocks, predict.

    Attributes:
      width: decoder width; transformer: its blocks.
      out_dim: size of each token's prediction (e.g. `t * p * p * C` pixels of a tubelet).
      cls_token: whether the encoder output has a cls row first (it is dropped before the blocks).
      embed_bias: whether the encoder-to-decoder projection has a bias (HF VideoMAE's has none).
      norm_eps: the final LayerNorm's eps; None = the blocks' (HF VideoMAE's is 1e-5).
    """

    width: int
    out_dim: int
    transformer: TransformerConfig
    cls_token: bool = True
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
        x = decoder_embed(latent, self.width, self.transformer.compute_dtype, self.embed_bias)
        x = with_mask_tokens(self, x, ids_restore, self.cls_token, keep_cls=False) + positions
        return decoder_head(x, self.transformer, self.out_dim, norm_eps=self.norm_eps)
