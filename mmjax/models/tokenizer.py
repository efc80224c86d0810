"""An image tokenizer's networks: a ViT encoder to one code vector per patch, and a ViT decoder
from code vectors back to pixels. The quantizer between them is in `mmjax/models/quantizers.py`."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.models.config import ViTConfig, transformer_config
from mmjax.models.initializers import with_axes, xavier_uniform, zeros
from mmjax.models.transformer import TransformerStack, layer_norm
from mmjax.models.vit import ViTEncoder
from mmjax.ops.patches import unpatchify
from mmjax.ops.posemb import sincos_2d


def _dense(features: int, axes: tuple, name: str, dtype) -> nn.Dense:
    return nn.Dense(
        features,
        dtype=dtype,
        param_dtype=jnp.float32,
        kernel_init=with_axes(xavier_uniform(), axes),
        bias_init=with_axes(zeros, (axes[1],)),
        name=name,
    )


class TokenizerModel(nn.Module):
    """ViT encoder -> `code_dim` vector per patch; `decoder_depth` blocks -> patch pixels.

    The decoder has the encoder's width, heads and MLP size and fixed 2-D sincos positions.
    `latent_dim > 0` (a VAE): the encoder's `code_dim = 2 * latent_dim` channels are a posterior's
    mean and log-variance, and the decoder reads `latent_dim` channels.
    """

    config: ViTConfig
    code_dim: int
    decoder_depth: int
    latent_dim: int = 0

    def setup(self):
        cfg = self.config
        dtype = cfg.compute_dtype
        self.encoder = ViTEncoder(cfg)
        self.to_code = _dense(self.code_dim, ("embed", None), "to_code", jnp.float32)
        self.from_code = _dense(cfg.width, (None, "embed"), "from_code", dtype)
        self.decoder = TransformerStack(config=transformer_config(cfg, depth=self.decoder_depth))
        self.decoder_norm = layer_norm(cfg.layer_norm_eps, jnp.float32, "decoder_norm")
        self.head = _dense(cfg.patch_dim, ("embed", None), "head", dtype)

    def __call__(self, images: jax.Array) -> jax.Array:
        """Initialises every part: `[B, H, W, C]` -> reconstruction `[B, H, W, C]` (no quantizer, posterior mean)."""
        z = self.encode(images)
        return self.decode(z[..., : self.latent_dim] if self.latent_dim else z)

    def encode(self, images: jax.Array) -> jax.Array:
        """`[B, H, W, C]` -> float32 code vectors `[B, h, w, code_dim]` (before quantization)."""
        rows, cols = self.config.grid
        tokens = self.encoder(images)[0][:, 1:]
        return self.to_code(tokens.astype(jnp.float32)).reshape(images.shape[0], rows, cols, self.code_dim)

    def decode(self, codes: jax.Array) -> jax.Array:
        """Quantized code vectors `[B, h, w, code_dim]` (VAE: latents `[B, h, w, latent_dim]`) -> float32
        images `[B, H, W, C]`."""
        cfg = self.config
        batch = codes.shape[0]
        x = self.from_code(codes.reshape(batch, cfg.num_patches, codes.shape[-1]))
        x = x.astype(jnp.float32) + jnp.asarray(sincos_2d(cfg.grid, cfg.width))[None]
        x = self.decoder_norm(self.decoder(x)[0])
        patches = self.head(x).astype(jnp.float32)
        return unpatchify(patches, cfg.grid, cfg.patch_size)

    def encode_tokens(self, images: jax.Array) -> jax.Array:
        """The ViT encoder's output `[B, 1 + N, D]` (cls first), for feature probes."""
        return self.encoder(images)[0]
