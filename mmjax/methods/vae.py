"""A KL-regularized image autoencoder with continuous latents: the tokenizer of GIVT and MAR.

The tokenizer's ViT encoder (`mmjax/models/tokenizer.py`) gives each patch a diagonal Gaussian
posterior `q(z | x) = N(mean, exp(logvar))` over `vae.latent_dim` channels; training samples
`z = mean + exp(logvar / 2) * eps` and decodes it back to pixels. The loss is

  pixel MSE + vae.beta * KL(q(z | x) || N(0, I)),

with the MSE averaged over pixels and the KL summed over a token's channels and averaged over
tokens (GIVT's beta-VAE; its ImageNet VAE has beta 5e-5 with 16 channels per 16 x 16 patch,
`big_vision/configs/proj/givt/givt_imagenet2012.py`). GIVT and MAR use a convolutional VAE; this
one is the project's ViT tokenizer at the paper's latent size (a deliberate substitution: one
tokenizer network for VQ, FSQ and KL latents).

`tokenize` gives the posterior mean `[B, h, w, latent_dim]`, `detokenize` decodes latents, so a
generator over continuous tokens treats it as MaskGIT treats a VQ tokenizer.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from mmjax.config import dataclass_from_config, knob, section_config
from mmjax.losses import gaussian_kl
from mmjax.methods.common import pool_tokens
from mmjax.methods.protocol import Batch, Params
from mmjax.methods.registry import register_method
from mmjax.models.config import ViTConfig, vit_config_from_section, vit_section
from mmjax.models.tokenizer import TokenizerModel

# The posterior's log-variance is clipped to this range (as latent-diffusion's KL autoencoder).
LOGVAR_RANGE = (-30.0, 20.0)


@dataclasses.dataclass(frozen=True)
class VAEOptions:
    """`vae`: the latent size and the KL weight (GIVT's ImageNet VAE: 16 channels, beta 5e-5)."""

    latent_dim: int = knob(16, "channels per latent token (GIVT / MAR at 256 px: 16)", low=1)
    beta: float = knob(5e-5, "weight of the KL term (GIVT: 5e-5; 1e-5 for its large model)", low=0)
    decoder_depth: int = knob(3, "transformer blocks of the pixel decoder", low=1)


def default_config() -> ml_collections.ConfigDict:
    """The method's fields: a ViT-B/16 encoder and `VAEOptions`; generated from the declarations."""
    return ml_collections.ConfigDict({"method": "vae", "model": vit_section(), "vae": section_config(VAEOptions)})


@dataclasses.dataclass(frozen=True)
class VAETokenizer:
    """The VAE method. Params: `{"model": ...}`. Batches: `image` `[B, H, W, C]`, normalized."""

    model_config: ViTConfig
    options: VAEOptions

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> VAETokenizer:
        return cls(vit_config_from_section(config.model), dataclass_from_config(VAEOptions, config.vae, "vae"))

    # --- Shapes -----------------------------------------------------------------------

    @property
    def latent_dim(self) -> int:
        return self.options.latent_dim

    @property
    def token_grid(self) -> tuple[int, int]:
        """`(h, w)` of the latent grid: the ViT's patch grid."""
        return self.model_config.grid

    @property
    def model(self) -> TokenizerModel:
        d = self.options.latent_dim
        return TokenizerModel(self.model_config, 2 * d, self.options.decoder_depth, latent_dim=d)

    def _images(self, batch: Batch) -> jax.Array:
        if "image" not in batch:
            raise KeyError(f"vae batches need an 'image' entry [B, H, W, C]; got keys {sorted(batch)}")
        return batch["image"]

    # --- Parameters -------------------------------------------------------------------

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        return {"model": nn.meta.unbox(self.model.init(rng, self._images(batch))["params"])}

    def param_axes(self) -> Params:
        cfg = self.model_config
        images = jax.ShapeDtypeStruct((1, *cfg.image_size, cfg.channels), jnp.float32)
        return {"model": nn.get_partition_spec(jax.eval_shape(self.model.init, jax.random.key(0), images))["params"]}

    def trainable(self, params: Params) -> Params:
        return jax.tree.map(lambda _: True, params)

    # --- Latents ----------------------------------------------------------------------

    def posterior(self, params: Params, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Normalized images `[B, H, W, C]` -> float32 `(mean, logvar)`, each `[B, h, w, latent_dim]`."""
        moments = self.model.apply({"params": params["model"]}, images, method=TokenizerModel.encode)
        mean, logvar = jnp.split(moments, 2, axis=-1)
        return mean, jnp.clip(logvar, *LOGVAR_RANGE)

    def sample_latents(self, params: Params, images: jax.Array, rng: jax.Array) -> jax.Array:
        """A posterior sample `mean + exp(logvar / 2) * eps` `[B, h, w, latent_dim]`."""
        mean, logvar = self.posterior(params, images)
        return mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mean.shape)

    def tokenize(self, params: Params, images: jax.Array) -> jax.Array:
        """Normalized images `[B, H, W, C]` -> the posterior mean `[B, h, w, latent_dim]` (no gradient)."""
        return jax.lax.stop_gradient(self.posterior(params, images)[0])

    def detokenize(self, params: Params, latents: jax.Array) -> jax.Array:
        """Latents `[B, h, w, latent_dim]` -> normalized images float32 `[B, H, W, C]`."""
        return self.model.apply({"params": params["model"]}, latents, method=TokenizerModel.decode)

    # --- Training ---------------------------------------------------------------------

    def forward(
        self, params: Params, images: jax.Array, rng: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`(reconstruction [B, H, W, C], mean, logvar [B, h, w, latent_dim])`; decodes a sample given `rng`,
        else the mean."""
        mean, logvar = self.posterior(params, images)
        z = mean if rng is None else mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mean.shape)
        return self.detokenize(params, z), mean, logvar

    def loss(self, params: Params, batch: Batch, rng: jax.Array, train: bool = True) -> tuple[jax.Array, dict]:
        """Pixel MSE + beta * KL per token; metrics `recon_loss`, `kl` (nats per token), `latent_std`."""
        images = self._images(batch)
        recon, mean, logvar = self.forward(params, images, rng if train else None)
        recon_loss = jnp.mean((recon - images.astype(jnp.float32)) ** 2)
        kl = jnp.mean(gaussian_kl(mean, logvar))
        loss = recon_loss + self.options.beta * kl
        return loss, {"loss": loss, "recon_loss": recon_loss, "kl": kl, "latent_std": jnp.std(mean)}

    # --- Evaluation -------------------------------------------------------------------

    def reconstruct(self, params: Params, batch: Batch, rng: jax.Array) -> dict[str, jax.Array]:
        """`reconstruction` `[B, H, W, C]` (from the posterior mean) and `mask` `[B, N]`, all False."""
        del rng
        images = self._images(batch)
        recon = self.forward(params, images)[0]
        return {"reconstruction": recon, "mask": jnp.zeros((images.shape[0], self.model_config.num_patches), bool)}

    def features(self, params: Params, images: jax.Array, pool: str = "cls") -> jax.Array:
        """Encoder features: `cls` / `mean` `[B, D]` or `tokens` `[B, 1 + N, D]`."""
        tokens = self.model.apply({"params": params["model"]}, images, method=TokenizerModel.encode_tokens)
        return pool_tokens(tokens, pool)


@register_method("vae")
def build_vae(config: ml_collections.ConfigDict) -> VAETokenizer:
    return VAETokenizer.from_config(config)


__all__ = ["VAEOptions", "VAETokenizer", "build_vae", "default_config"]
