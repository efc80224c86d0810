"""BERT (Devlin et al. 2019) as HF `BertForMaskedLM`: post-LN encoder and the tied MLM head.

Embeddings: word + position + token type, LayerNorm, dropout. Each block:
`x = norm(x + attn(x))`, `x = norm(x + fc2(gelu(fc1(x))))` (exact GELU). The MLM head is
`dense -> gelu -> LayerNorm -> x @ word_embeddings.T + bias`. Parameters are float32 and
initialised as HF does (normal(0.02) weights, zero biases). Packed rows attend within
their segment only (`segment_ids`, 0 = padding) through `mmjax.ops.attention`.

`decoder_depth` > 0 is MAE-LM (Meng et al. 2024, "Representation Deficiency in Masked Language
Modeling"): the encoder never sees a `[MASK]` token (`exclude` cuts those positions out of
every encoder attention: the real tokens' outputs are exactly those of an encoder run on the
real tokens alone, at their own positions; the sequence keeps its length, so there is no
compute saving), then a shallow decoder of `decoder_depth` more blocks sees the encoder's
outputs with the `[MASK]` positions re-embedded and feeds the tied head. Only the encoder is
kept for downstream use.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from mmjax.config import dataclass_from_config, knob
from mmjax.models.config import DTYPES, AttentionOption, dtype_knob
from mmjax.models.initializers import normal, with_axes, zeros
from mmjax.models.transformer import layer_norm
from mmjax.ops.attention import attention

# name -> (width, depth, heads); the MLP is 4x wide (Devlin et al., Turc et al.).
BERT_SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (128, 2, 2),
    "mini": (256, 4, 4),
    "small": (512, 4, 8),
    "medium": (512, 8, 8),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
}


@dataclasses.dataclass(frozen=True)
class BertConfig(AttentionOption):
    """A BERT encoder + MLM head; fields as HF `BertConfig` (`width` = `hidden_size`, ...)."""

    vocab_size: int = knob(30522, "token vocabulary; None in the section = the tokenizer's")
    width: int = knob(768, "hidden size (HF hidden_size)")
    depth: int = knob(12, "encoder layers")
    heads: int = knob(12, "attention heads; width must be a multiple")
    mlp_dim: int = knob(3072, "hidden size of the MLPs (HF intermediate_size)")
    max_len: int = knob(512, "position table length")
    type_vocab_size: int = knob(2, "token type (segment) ids")
    layer_norm_eps: float = knob(1e-12, "eps of every LayerNorm")
    dropout: float = knob(0.1, "dropout of embeddings, attention and MLP outputs in training, in [0, 1)")
    init_std: float = knob(0.02, "std of the truncated-normal init")
    dtype: str = dtype_knob()
    decoder_depth: int = knob(0, "MAE-LM's decoder blocks after the encoder; 0 = BERT")

    def __post_init__(self):
        if self.width <= 0 or self.heads <= 0 or self.width % self.heads:
            raise ValueError(f"model.width={self.width} must be a positive multiple of model.heads={self.heads}")
        for name in ("vocab_size", "depth", "mlp_dim", "max_len", "type_vocab_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"model.{name} must be positive, got {getattr(self, name)}")
        if self.decoder_depth < 0:
            raise ValueError(f"model.decoder_depth must be >= 0 (0 = BERT, > 0 = MAE-LM), got {self.decoder_depth}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.dtype not in DTYPES:
            raise ValueError(f"model.dtype must be one of {DTYPES}, got {self.dtype!r}")
        self.check_attention_impl("model")


def _dense(config: BertConfig, features, axes, name, **kwargs) -> nn.Module:
    return nn.DenseGeneral(
        features,
        dtype=jnp.dtype(config.dtype),
        param_dtype=jnp.float32,
        kernel_init=with_axes(normal(config.init_std), axes[0]),
        bias_init=with_axes(zeros, axes[1]),
        name=name,
        **kwargs,
    )


def pool_text(hidden: jax.Array, real: jax.Array, pool: str) -> jax.Array:
    """Encoder output `[B, L, D]` of one text per row (`real` bool `[B, L]`: not padding) -> `cls` `[B, D]`
    (the `[CLS]` token's), `mean` `[B, D]` (over the real tokens) or `tokens` `[B, L, D]`."""
    if pool == "cls":
        return hidden[:, 0]
    if pool == "mean":
        weights = real[..., None].astype(hidden.dtype)
        return jnp.sum(hidden * weights, axis=1) / jnp.maximum(jnp.sum(weights, axis=1), 1.0)
    if pool == "tokens":
        return hidden
    raise ValueError(f"pool must be one of ('cls', 'mean', 'tokens'), got {pool!r}")


class BertBlock(nn.Module):
    """One post-LN BERT layer: `[B, L, D] -> [B, L, D]`."""

    config: BertConfig

    @nn.compact
    def __call__(
        self, x: jax.Array, segment_ids: jax.Array | None, deterministic: bool, causal: bool = False
    ) -> jax.Array:
        cfg = self.config
        head_dim = cfg.width // cfg.heads
        qkv_axes = (("embed", "heads", "kv"), ("heads", "kv"))
        q, k, v = (_dense(cfg, (cfg.heads, head_dim), qkv_axes, name)(x) for name in ("query", "key", "value"))
        length = x.shape[1]
        mask = jnp.broadcast_to(jnp.tril(jnp.ones((length, length), bool)), (x.shape[0], length, length))
        y = attention(
            q,
            k,
            v,
            q_segment_ids=segment_ids,
            kv_segment_ids=segment_ids,
            mask=mask if causal else None,
            impl=cfg.attention_impl,
        )
        y = _dense(cfg, cfg.width, (("heads", "kv", "embed"), ("embed",)), "out", axis=(-2, -1))(y)
        y = nn.Dropout(cfg.dropout)(y, deterministic=deterministic)
        x = layer_norm(cfg.layer_norm_eps, jnp.float32, "attn_norm")(x + y.astype(x.dtype))
        y = _dense(cfg, cfg.mlp_dim, (("embed", "mlp"), ("mlp",)), "fc1")(x)
        y = _dense(cfg, cfg.width, (("mlp", "embed"), ("embed",)), "fc2")(nn.gelu(y, approximate=False))
        y = nn.Dropout(cfg.dropout)(y, deterministic=deterministic)
        return layer_norm(cfg.layer_norm_eps, jnp.float32, "mlp_norm")(x + y.astype(x.dtype))


class BertMLM(nn.Module):
    """BERT encoder with the tied MLM head; `encode` gives the encoder output alone."""

    config: BertConfig

    def setup(self):
        cfg = self.config
        embed = functools.partial(
            nn.Embed, features=cfg.width, param_dtype=jnp.float32, dtype=jnp.float32
        )  # gathers stay float32; the blocks cast
        init = normal(cfg.init_std)
        self.word_embeddings = embed(cfg.vocab_size, embedding_init=with_axes(init, ("vocab", "embed")))
        self.position_embeddings = embed(cfg.max_len, embedding_init=with_axes(init, (None, "embed")))
        self.token_type_embeddings = embed(cfg.type_vocab_size, embedding_init=with_axes(init, (None, "embed")))
        self.embed_norm = layer_norm(cfg.layer_norm_eps, jnp.float32, "embed_norm")
        self.embed_dropout = nn.Dropout(cfg.dropout)
        self.blocks = [BertBlock(cfg, name=f"block_{i}") for i in range(cfg.depth)]
        self.decoder_blocks = [BertBlock(cfg, name=f"decoder_block_{i}") for i in range(cfg.decoder_depth)]
        self.head_dense = _dense(cfg, cfg.width, (("embed", "mlp"), ("mlp",)), "head_dense")
        self.head_norm = layer_norm(cfg.layer_norm_eps, jnp.float32, "head_norm")
        self.head_bias = self.param("head_bias", with_axes(zeros, ("vocab",)), (cfg.vocab_size,), jnp.float32)

    def embed(
        self,
        input_ids: jax.Array,
        positions: jax.Array | None = None,
        token_type_ids: jax.Array | None = None,
        *,
        deterministic: bool = True,
    ) -> jax.Array:
        """Word + position + token-type embeddings, LayerNorm, dropout: int `[B, L]` -> float32 `[B, L, D]`."""
        if positions is None:
            positions = jnp.broadcast_to(jnp.arange(input_ids.shape[1]), input_ids.shape)
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        x = self.embed_norm(x + self.token_type_embeddings(token_type_ids))
        return self.embed_dropout(x, deterministic=deterministic)

    def encode(
        self,
        input_ids: jax.Array,
        segment_ids: jax.Array | None = None,
        positions: jax.Array | None = None,
        token_type_ids: jax.Array | None = None,
        *,
        deterministic: bool = True,
        exclude: jax.Array | None = None,
        causal: bool = False,
    ) -> jax.Array:
        """Encoder output float32 `[B, L, D]`.

        Args:
          input_ids: int `[B, L]`.
          segment_ids: int `[B, L]`; tokens attend within their segment (None: all attend to all).
          positions: int `[B, L]` (None: `0..L-1`).
          token_type_ids: int `[B, L]` (None: zeros).
          deterministic: False applies dropout (needs a `dropout` rng).
          exclude: bool `[B, L]`; no other token attends to these positions (MAE-LM's `[MASK]`
            tokens), and their own output rows are meaningless.
          causal: each token attends to itself and earlier tokens only (the CLM objective).
        """
        if exclude is not None:
            segments = jnp.ones_like(input_ids) if segment_ids is None else segment_ids
            segment_ids = jnp.where(exclude, -1, segments)
        x = self.embed(input_ids, positions, token_type_ids, deterministic=deterministic)
        for block in self.blocks:
            x = block(x, segment_ids, deterministic, causal)
        return x

    def decode(
        self,
        hidden: jax.Array,
        input_ids: jax.Array,
        exclude: jax.Array | None,
        segment_ids: jax.Array | None = None,
        positions: jax.Array | None = None,
        token_type_ids: jax.Array | None = None,
        *,
        deterministic: bool = True,
    ) -> jax.Array:
        """MAE-LM's decoder: `[B, L, D]` encoder output, the `exclude`d positions re-embedded from
        `input_ids`, through `decoder_depth` blocks -> `[B, L, D]`; the identity when `decoder_depth` is 0."""
        if not self.config.decoder_depth:
            return hidden
        if exclude is not None:
            embedded = self.embed(input_ids, positions, token_type_ids, deterministic=deterministic)
            hidden = jnp.where(exclude[..., None], embedded, hidden)
        for block in self.decoder_blocks:
            hidden = block(hidden, segment_ids, deterministic)
        return hidden

    def logits(self, hidden: jax.Array) -> jax.Array:
        """Encoder output `[..., D]` -> float32 vocabulary logits `[..., V]` (decoder tied to the word embeddings)."""
        h = self.head_norm(nn.gelu(self.head_dense(hidden), approximate=False))
        return self.word_embeddings.attend(h.astype(jnp.float32)) + self.head_bias

    def __call__(
        self,
        input_ids: jax.Array,
        segment_ids: jax.Array | None = None,
        positions: jax.Array | None = None,
        token_type_ids: jax.Array | None = None,
        *,
        deterministic: bool = True,
        exclude: jax.Array | None = None,
    ) -> jax.Array:
        """MLM logits float32 `[B, L, V]`; arguments as `encode` (with MAE-LM's decoder when `decoder_depth` > 0)."""
        hidden = self.encode(
            input_ids, segment_ids, positions, token_type_ids, deterministic=deterministic, exclude=exclude
        )
        hidden = self.decode(
            hidden, input_ids, exclude, segment_ids, positions, token_type_ids, deterministic=deterministic
        )
        return self.logits(hidden)


def bert_section(size: str | None = "base") -> ml_collections.ConfigDict:
    """The `model` section: `size` in `BERT_SIZES` sets width/depth/heads/mlp_dim, else the explicit fields.

    `vocab_size` None takes the tokenizer's size.
    """
    fields = {f.name: f.default for f in dataclasses.fields(BertConfig)}
    fields.update(size=size, vocab_size=None)
    return ml_collections.ConfigDict(fields, type_safe=False)


def bert_config_from_section(model: Any, vocab_size: int) -> BertConfig:
    """`BertConfig` from the `model` section; a `size` overrides width/depth/heads/mlp_dim."""
    values = model.to_dict() if hasattr(model, "to_dict") else dict(model)
    size = values.pop("size", None)
    if size is not None:
        if size not in BERT_SIZES:
            raise ValueError(f"model.size={size!r}: expected one of {sorted(BERT_SIZES)} or None")
        width, depth, heads = BERT_SIZES[size]
        values.update(width=width, depth=depth, heads=heads, mlp_dim=4 * width)
    if values.get("vocab_size") is None:
        values["vocab_size"] = vocab_size
    elif values["vocab_size"] < vocab_size:
        raise ValueError(f"model.vocab_size={values['vocab_size']} is smaller than the tokenizer's {vocab_size} tokens")
    return dataclass_from_config(BertConfig, values, "model")
