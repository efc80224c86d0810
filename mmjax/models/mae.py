"""MAE: sparse ViT encoder on visible patches plus a light decoder with mask tokens.

The decoder is the one of every MAE-style model (`mmjax.models.token_mae`: `decoder_embed`,
`with_mask_tokens`, `decoder_head`), with the cls row kept and the image's position table.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.masking.mask import Mask
from mmjax.masking.tokens import gather_tokens
from mmjax.models.config import DecoderConfig, ViTConfig, transformer_config
from mmjax.models.token_mae import decoder_embed, decoder_head, with_mask_tokens
from mmjax.models.vit import ViTEncoder, position_embedding


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
        x = decoder_embed(latent, dec.width, cfg.compute_dtype)
        x = with_mask_tokens(self, x, ids_restore, cls_token=True, keep_cls=True)
        x = x + position_embedding(self, dec.posemb, cfg.grid, dec.width, "pos_embedding")
        stack, out_dim = (
            transformer_config(cfg, dec),
            self.out_dim or cfg.patch_dim,
        )
        if decode_ids is None:
            return decoder_head(x, stack, out_dim)[:, 1:], {"tokens": x}
        picked = decoder_head(jnp.concatenate([x[:, :1], gather_tokens(x[:, 1:], decode_ids)], 1), stack, out_dim)[
            :, 1:
        ]
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
