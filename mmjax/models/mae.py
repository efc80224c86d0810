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


class MAEDecoder(nn.Module):
    """Linear to decoder width, mask tokens, unshuffle, position embedding, blocks, predict each patch's target.

    `out_dim` is the target's width per patch (None: the pixels, `p_h * p_w * C`). With
    `loss_predictor` (HPM), a second branch of the same depth on the same tokens (`loss_blocks`,
    `loss_norm`, `loss_pred`) predicts each patch's reconstruction loss: a `p_h * p_w * C`-wide
    linear layer averaged to one number, as in the reference. `decode_ids` restricts the blocks
    to the cls token and those patches (a cheaper pass when only some hidden patches are targets).
    """

    config: ViTConfig
    decoder_config: DecoderConfig
    out_dim: int | None = None
    loss_predictor: bool = False

    def _branch(self, x: jax.Array, out: int, names: tuple[str, str, str]) -> jax.Array:
        cfg, dec = self.config, self.decoder_config
        blocks, norm, pred = names
        x = TransformerStack(
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

    @nn.compact
    def __call__(
        self, latent: jax.Array, ids_restore: jax.Array, decode_ids: jax.Array | None = None
    ) -> jax.Array | tuple[jax.Array, jax.Array]:
        """Predict every patch (or the `decode_ids` ones).

        Args:
          latent: `[B, 1 + K, D]` encoder output (cls first).
          ids_restore: int `[B, N]`.
          decode_ids: optional int `[B, S]`: only these patches (with the cls token) pass the
            blocks; the other rows of the output are zeros.

        Returns:
          float32 `[B, N, out_dim]` patch predictions (cls dropped; `out_dim` defaults to `p_h * p_w * C`);
          with `loss_predictor`, also the predicted loss per patch, float32 `[B, N]`.
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
        if decode_ids is not None:
            if self.loss_predictor:
                raise ValueError("decode_ids with a loss predictor: HPM predicts the loss of every patch")
            picked = self._branch(
                jnp.concatenate([x[:, :1], gather_tokens(x[:, 1:], decode_ids)], 1),
                self.out_dim or cfg.patch_dim,
                ("blocks", "norm", "pred"),
            )
            rows = jnp.arange(x.shape[0])[:, None]
            return (
                jnp.zeros((x.shape[0], x.shape[1] - 1, picked.shape[-1]), picked.dtype).at[rows, decode_ids].set(picked)
            )
        pred = self._branch(x, self.out_dim or cfg.patch_dim, ("blocks", "norm", "pred"))
        if not self.loss_predictor:
            return pred
        predicted_loss = self._branch(x, cfg.patch_dim, ("loss_blocks", "loss_norm", "loss_pred"))
        return pred, jnp.mean(predicted_loss, axis=-1)


class MAEModel(nn.Module):
    """Encoder (visible patches only) and decoder; `__call__` returns patch predictions `[B, N, out_dim]`.

    With `loss_predictor` (HPM) it returns `(predictions, predicted loss [B, N])`. With
    `num_classes` > 0 (SupMAE) it returns `(that, class logits [B, num_classes])`: the mean of
    the visible patch tokens, a LayerNorm (`label_norm`) and a linear head (`label_head`).
    With `local_blocks` (LocalMIM) the predictions become `(predictions, (one [B, N, p_h p_w C]
    prediction per local block, ...))`, before the class logits: each block's output through
    a LayerNorm (`local_norms_i`) and a decoder of `local_decoder`'s size (`local_decoders_i`).
    """

    config: ViTConfig
    decoder_config: DecoderConfig
    out_dim: int | None = None
    loss_predictor: bool = False
    num_classes: int = 0
    local_blocks: tuple[int, ...] = ()
    local_decoder: DecoderConfig | None = None

    def setup(self):
        self.encoder = ViTEncoder(self.config, keep_blocks=self.local_blocks)
        self.decoder = MAEDecoder(self.config, self.decoder_config, self.out_dim, self.loss_predictor)
        if self.local_blocks:
            eps = self.config.layer_norm_eps
            self.local_norms = [layer_norm(eps, jnp.float32, None) for _ in self.local_blocks]
            self.local_decoders = [MAEDecoder(self.config, self.local_decoder) for _ in self.local_blocks]
        if self.num_classes:
            self.label_norm = layer_norm(self.config.layer_norm_eps, jnp.float32, "label_norm")
            self.label_head = nn.Dense(
                self.num_classes,
                param_dtype=jnp.float32,
                kernel_init=with_axes(normal(0.02), ("embed", None)),
                bias_init=with_axes(zeros, (None,)),
            )

    def __call__(
        self, images: jax.Array, mask: Mask, decode_ids: jax.Array | None = None
    ) -> jax.Array | tuple[jax.Array, jax.Array]:
        """`[B, H, W, C]` images and a fixed-count `Mask` -> `[B, N, out_dim]` predictions.

        `decode_ids` `[B, S]`: the decoder's blocks see only these patches (zeros elsewhere).
        """
        if mask.ids_keep is None or mask.ids_restore is None:
            raise ValueError("MAE needs a fixed-count Mask with ids_keep and ids_restore")
        latent = self.encoder(images, mask.ids_keep)
        kept = ()
        if self.local_blocks:
            latent, kept = latent
        out = self.decoder(latent, mask.ids_restore, decode_ids)
        if self.local_blocks:
            local = tuple(
                dec(norm(h), mask.ids_restore)
                for h, norm, dec in zip(kept, self.local_norms, self.local_decoders, strict=True)
            )
            out = (out, local)
        if not self.num_classes:
            return out
        return out, self.label_head(self.label_norm(jnp.mean(latent[:, 1:], axis=1)))

    def encode(self, images: jax.Array, ids_keep: jax.Array | None = None) -> jax.Array:
        """Encoder only: `[B, H, W, C] -> [B, 1 + K, D]` (all patches when `ids_keep` is None)."""
        tokens = self.encoder(images, ids_keep)
        return tokens[0] if self.local_blocks else tokens
