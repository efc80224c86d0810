"""MAE: sparse ViT encoder on visible patches plus a light decoder with mask tokens."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.masking.mask import Mask
from mmjax.masking.tokens import gather_tokens, restore_with_mask_tokens
from mmjax.models.config import DecoderConfig, ViTConfig
from mmjax.models.initializers import normal, with_axes, xavier_uniform, zeros
from mmjax.models.transformer import TransformerStack, layer_norm
from mmjax.models.vit import ViTEncoder, position_embedding


def decoder_head(
    x: jax.Array, config: ViTConfig, decoder_config: DecoderConfig, out: int, names: tuple[str, str, str]
) -> jax.Array:
    """Decoder blocks, LayerNorm, linear map to `out` on `[B, 1 + S, D_dec]`, cls row dropped: float32 `[B, S, out]`.

    Called inside a compact module, whose submodules get `names` (blocks, norm, linear).
    """
    cfg, dec = config, decoder_config
    blocks, norm, pred = names
    x, _ = TransformerStack(
        dec.depth,
        dec.heads,
        dec.mlp_dim,
        cfg.layer_norm_eps,
        cfg.qkv_bias,
        cfg.compute_dtype,
        cfg.attention_impl,
        cfg.remat,
        cfg.scan,
        name=blocks,
    )(x)
    x = layer_norm(cfg.layer_norm_eps, cfg.compute_dtype, norm)(x)
    x = nn.Dense(
        out,
        dtype=cfg.compute_dtype,
        param_dtype=jnp.float32,
        kernel_init=with_axes(xavier_uniform(), ("embed", None)),
        bias_init=with_axes(zeros, (None,)),
        name=pred,
    )(x)
    return x[:, 1:].astype(jnp.float32)


class MAEDecoder(nn.Module):
    """Linear to decoder width, mask tokens, unshuffle, position embedding, blocks, predict each patch's target.

    `out_dim` is the target's width per patch (None: the pixels, `p_h * p_w * C`). `decode_ids`
    restricts the blocks to the cls token and those patches (a cheaper pass when only some
    hidden patches are targets).
    """

    config: ViTConfig
    decoder_config: DecoderConfig
    out_dim: int | None = None

    @nn.compact
    def __call__(
        self, latent: jax.Array, ids_restore: jax.Array, decode_ids: jax.Array | None = None
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Predict every patch (or the `decode_ids` ones).

        Args:
          latent: `[B, 1 + K, D]` encoder output (cls first).
          ids_restore: int `[B, N]`.
          decode_ids: optional int `[B, S]`: only these patches (with the cls token) pass the
            blocks; the other rows of the output are zeros.

        Returns:
          `(pred, out)`: float32 `[B, N, out_dim]` patch predictions (cls dropped; `out_dim`
          defaults to `p_h * p_w * C`); `out["tokens"]` `[B, 1 + N, D_dec]` float32, the blocks'
          input (mask tokens in place, position table added).
        """
        cfg, dec = self.config, self.decoder_config
        dense = dict(dtype=cfg.compute_dtype, param_dtype=jnp.float32, bias_init=with_axes(zeros, ("embed",)))
        x = nn.Dense(
            dec.width,
            kernel_init=with_axes(xavier_uniform(), (None, "embed")),
            name="embed",
            **dense,
        )(latent)
        mask_token = self.param("mask_token", with_axes(normal(0.02), (None, None, "embed")), (1, 1, dec.width))
        patches = restore_with_mask_tokens(x[:, 1:], mask_token, ids_restore)
        x = jnp.concatenate([x[:, :1], patches], axis=1).astype(jnp.float32)
        x = x + position_embedding(self, dec.posemb, cfg.grid, dec.width, "pos_embedding")
        out_dim, names = self.out_dim or cfg.patch_dim, ("blocks", "norm", "pred")
        if decode_ids is None:
            return decoder_head(x, cfg, dec, out_dim, names), {"tokens": x}
        picked = decoder_head(
            jnp.concatenate([x[:, :1], gather_tokens(x[:, 1:], decode_ids)], 1), cfg, dec, out_dim, names
        )
        rows = jnp.arange(x.shape[0])[:, None]
        pred = jnp.zeros((x.shape[0], x.shape[1] - 1, picked.shape[-1]), picked.dtype).at[rows, decode_ids].set(picked)
        return pred, {"tokens": x}


class MAEModel(nn.Module):
    """Encoder (visible patches only) and decoder: `(patch predictions [B, N, out_dim], out)`.

    `out` names the intermediates add-on terms read (`mmjax.methods.terms`): the encoder's
    (`encoded` `[B, 1 + K, D]`, `block{i}` for unrolled encoders) and the decoder's blocks'
    input `decoder_tokens` `[B, 1 + N, D_dec]`.
    """

    config: ViTConfig
    decoder_config: DecoderConfig
    out_dim: int | None = None

    def setup(self):
        self.encoder = ViTEncoder(self.config)
        self.decoder = MAEDecoder(self.config, self.decoder_config, self.out_dim)

    def __call__(
        self, images: jax.Array, mask: Mask, decode_ids: jax.Array | None = None
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """`[B, H, W, C]` images and a fixed-count `Mask` -> `([B, N, out_dim] predictions, out)`.

        `decode_ids` `[B, S]`: the decoder's blocks see only these patches (zeros elsewhere).
        """
        if mask.ids_keep is None or mask.ids_restore is None:
            raise ValueError("MAE needs a fixed-count Mask with ids_keep and ids_restore")
        latent, out = self.encoder(images, mask.ids_keep)
        pred, decoded = self.decoder(latent, mask.ids_restore, decode_ids)
        return pred, {**out, "decoder_tokens": decoded["tokens"]}

    def encode(self, images: jax.Array, ids_keep: jax.Array | None = None) -> jax.Array:
        """Encoder only: `[B, H, W, C] -> [B, 1 + K, D]` (all patches when `ids_keep` is None)."""
        return self.encoder(images, ids_keep)[0]
