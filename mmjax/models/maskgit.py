"""MaskGIT / Muse's bidirectional transformer over discrete codes.

Inputs are code ids `[B, N]` in `[0, vocab_size]`, where `vocab_size` itself is the mask
id (so it can never be a code), a class label per example (`num_classes` is the "null"
class used for classifier-free guidance) and, for Muse-style conditioning, an embedding
sequence `[B, M, C]` read through cross-attention. The output is logits over the
`vocab_size` codes only: the mask id can never be predicted.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.models.config import TransformerConfig
from mmjax.models.initializers import normal, with_axes, xavier_uniform, zeros
from mmjax.models.transformer import MLP, MultiHeadAttention, TransformerStack, layer_norm


class ConditionedBlock(nn.Module):
    """Pre-LN block with cross-attention: self-attention, cross-attention to the context, MLP."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, x: jax.Array, context: jax.Array, context_lengths: jax.Array | None) -> jax.Array:
        """`[B, L, D]` -> `[B, L, D]`; the residual stream stays float32."""
        cfg = self.config
        norm = functools.partial(layer_norm, cfg.layer_norm_eps, cfg.compute_dtype)
        y = MultiHeadAttention(config=cfg, name="attn")(norm("norm1")(x))
        x = x + y.astype(x.dtype)
        cross = MultiHeadAttention(config=cfg, name="cross")
        y = cross(norm("norm_cross")(x), context_lengths, context=context)
        x = x + y.astype(x.dtype)
        y = MLP(hidden=cfg.mlp_dim, dtype=cfg.compute_dtype, name="mlp")(norm("norm2")(x))
        return x + y.astype(x.dtype)


class MaskGITTransformer(nn.Module):
    """Bidirectional transformer: code + position embeddings, a class token first, blocks, tied logits.

    Attributes:
      vocab_size: number of codes V; id V is the mask token.
      num_tokens: N, the length of a flattened code map.
      num_classes: K class labels; label K is the null (unconditional) class. 0: no class token.
      width: token width; transformer: the blocks (depth, heads, MLP, eps, dtype, attention, remat, scan).
      context_dim: C of a conditioning sequence read by cross-attention in every block (Muse);
        0 = no cross-attention.
    """

    vocab_size: int
    num_tokens: int
    num_classes: int
    width: int
    transformer: TransformerConfig
    context_dim: int = 0

    @nn.compact
    def __call__(
        self,
        codes: jax.Array,
        labels: jax.Array | None = None,
        context: jax.Array | None = None,
        context_lengths: jax.Array | None = None,
    ) -> jax.Array:
        """Logits for every position.

        Args:
          codes: int `[B, N]`, values in `[0, vocab_size]` (`vocab_size` = masked).
          labels: int `[B]` in `[0, num_classes]` (`num_classes` = null); needed when `num_classes > 0`.
          context: float `[B, M, context_dim]`; needed when `context_dim > 0`.
          context_lengths: int `[B]`, valid context rows per example (0 = no condition); default all M.

        Returns:
          float32 `[B, N, vocab_size]`.
        """
        batch, num_tokens = codes.shape
        if num_tokens != self.num_tokens:
            raise ValueError(f"codes must be [B, {self.num_tokens}] (model.num_tokens); got {codes.shape}")
        cfg = self.transformer
        dtype = cfg.compute_dtype
        embed = nn.Embed(
            self.vocab_size + 1,
            self.width,
            # vocab_size + 1 rows (the mask id) rarely divide a mesh axis: the table is not split by rows.
            embedding_init=with_axes(normal(0.02), (None, "embed")),
            name="token_embed",
        )
        x = embed(codes).astype(jnp.float32)
        x = x + self.param("pos_embed", with_axes(normal(0.02), (None, None, "embed")), (1, num_tokens, self.width))
        if self.num_classes > 0:
            if labels is None:
                raise ValueError(f"num_classes={self.num_classes}: labels [B] are required")
            class_embed = nn.Embed(
                self.num_classes + 1,
                self.width,
                embedding_init=with_axes(normal(0.02), (None, "embed")),
                name="class_embed",
            )
            x = jnp.concatenate([class_embed(labels.astype(jnp.int32))[:, None].astype(jnp.float32), x], axis=1)
        x = layer_norm(self.transformer.layer_norm_eps, jnp.float32, "embed_norm")(x)
        if self.context_dim > 0:
            if context is None or context.shape[-1] != self.context_dim:
                got = None if context is None else context.shape
                raise ValueError(f"context must be [B, M, {self.context_dim}] (model.context_dim); got {got}")
            context = context.astype(jnp.float32)
            for i in range(cfg.depth):
                x = ConditionedBlock(config=cfg, name=f"block_{i}")(x, context, context_lengths)
        else:
            x, _ = TransformerStack(config=cfg, name="blocks")(x)
        x = x[:, -num_tokens:]
        self.sow("intermediates", "hidden", x)  # [B, N, D], the tokens' outputs (collected when mutable)
        # MaskGIT's MLM head: dense + GELU + LayerNorm, then logits tied to the code embeddings.
        x = nn.Dense(
            self.width,
            dtype=dtype,
            param_dtype=jnp.float32,
            kernel_init=with_axes(xavier_uniform(), ("embed", "mlp")),
            bias_init=with_axes(zeros, ("mlp",)),
            name="head",
        )(x)
        x = layer_norm(self.transformer.layer_norm_eps, jnp.float32, "head_norm")(nn.gelu(x, approximate=False))
        table = embed.embedding[: self.vocab_size].astype(jnp.float32)
        bias = self.param("logits_bias", with_axes(zeros, (None,)), (self.vocab_size,))
        return (jnp.einsum("bnd,vd->bnv", x.astype(jnp.float32), table) + bias).astype(jnp.float32)
