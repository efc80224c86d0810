"""Image tokenizers trained to reconstruct pixels: a cosine VQ codebook (EMA or straight-through,
with dead-code restarts; BEiT v2 / ViT-VQGAN) or FSQ (Mentzer et al. 2023).

`tokenize` / `detokenize` turn normalized images into a grid of code ids and back; BEiT uses
the ids as targets and MaskGIT generates them.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import PartitionSpec as P

from mmjax.config import dataclass_from_config, knob, section_config
from mmjax.methods.common import pool_tokens
from mmjax.methods.protocol import STATE_INPUTS, Batch, Params
from mmjax.methods.registry import register_method
from mmjax.models import quantizers as q
from mmjax.models.config import ViTConfig, vit_config_from_section, vit_section
from mmjax.models.tokenizer import TokenizerModel

QUANTIZERS = ("vq", "fsq")
CODEBOOK_UPDATES = ("ema", "straight_through")


@dataclasses.dataclass(frozen=True)
class TokenizerOptions:
    """`tokenizer`: the quantizer and its codebook, with BEiT v2's 8192 x 32 cosine codebook."""

    # quantizer and codebook are checked in __post_init__ (their messages say "must be one of").
    quantizer: str = knob("vq", f"one of {QUANTIZERS}")
    codebook: str = knob("ema", f"vq only: how the codebook learns, one of {CODEBOOK_UPDATES}")
    vocab_size: int = knob(8192, "vq only; fsq has prod(levels) codes")
    code_dim: int = knob(32, "vq only; fsq codes have len(levels) channels")
    levels: tuple[int, ...] = knob((8, 5, 5, 5), "fsq only: levels per code channel, each >= 2")
    decoder_depth: int = knob(3, "transformer blocks of the pixel decoder")
    ema_decay: float = knob(0.99, "codebook EMA (codebook=ema), in [0, 1)")
    commitment: float = knob(0.25, "weight of the commitment loss (vq)", low=0)
    usage_decay: float = knob(0.95, "EMA of each code's share of the batch, relative to uniform; in [0, 1)")
    dead_threshold: float = knob(0.05, "restart a code whose usage EMA falls below this; 0 = never")

    def __post_init__(self):
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"tokenizer.quantizer must be one of {QUANTIZERS}, got {self.quantizer!r}")
        if self.codebook not in CODEBOOK_UPDATES:
            raise ValueError(f"tokenizer.codebook must be one of {CODEBOOK_UPDATES}, got {self.codebook!r}")
        if self.vocab_size < 2 or self.code_dim < 1:
            raise ValueError(
                f"tokenizer.vocab_size (>= 2) and tokenizer.code_dim (>= 1) must be positive, got "
                f"{self.vocab_size}, {self.code_dim}"
            )
        if not self.levels or any(level < 2 for level in self.levels):
            raise ValueError(f"tokenizer.levels must be integers >= 2, got {self.levels}")
        for name in ("ema_decay", "usage_decay"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"tokenizer.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.dead_threshold < 0 or self.decoder_depth < 1:
            raise ValueError(
                f"tokenizer.dead_threshold must be >= 0 and tokenizer.decoder_depth >= 1, got "
                f"{self.dead_threshold}, {self.decoder_depth}"
            )


def default_config() -> ml_collections.ConfigDict:
    """The method's fields: a ViT-B/16 tokenizer (`TokenizerOptions`); generated from the declarations."""
    return ml_collections.ConfigDict(
        {"method": "vq", "model": vit_section(), "tokenizer": section_config(TokenizerOptions)}
    )


@dataclasses.dataclass(frozen=True)
class VQTokenizer:
    """The tokenizer method. Params: `{"model": ..., "quantizer": {"codebook", "usage", "restarts"}}`
    (FSQ has no `quantizer` entry). Batches are dicts with `image` `[B, H, W, C]`, normalized."""

    model_config: ViTConfig
    options: TokenizerOptions

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> VQTokenizer:
        options = dataclass_from_config(TokenizerOptions, config.tokenizer, "tokenizer")
        return cls(vit_config_from_section(config.model), options)

    # --- Shapes -----------------------------------------------------------------------

    @property
    def is_fsq(self) -> bool:
        return self.options.quantizer == "fsq"

    @property
    def vocab_size(self) -> int:
        """Number of code ids: `tokenizer.vocab_size`, or `prod(levels)` for FSQ."""
        return q.fsq_vocab_size(self.options.levels) if self.is_fsq else self.options.vocab_size

    @property
    def token_grid(self) -> tuple[int, int]:
        """`(h, w)` of the code grid: the ViT's patch grid."""
        return self.model_config.grid

    @property
    def code_dim(self) -> int:
        return len(self.options.levels) if self.is_fsq else self.options.code_dim

    @property
    def model(self) -> TokenizerModel:
        return TokenizerModel(self.model_config, self.code_dim, self.options.decoder_depth)

    def _images(self, batch: Batch) -> jax.Array:
        if "image" not in batch:
            raise KeyError(f"tokenizer batches need an 'image' entry [B, H, W, C]; got keys {sorted(batch)}")
        return batch["image"]

    # --- Parameters -------------------------------------------------------------------

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        model_key, code_key = jax.random.split(rng)
        params = {"model": nn.meta.unbox(self.model.init(model_key, self._images(batch))["params"])}
        if not self.is_fsq:
            k = self.options.vocab_size
            codebook = q.l2_normalize(jax.random.normal(code_key, (k, self.options.code_dim)))
            params["quantizer"] = {"codebook": codebook, "usage": jnp.ones((k,)), "restarts": jnp.zeros(())}
        return params

    def param_axes(self) -> Params:
        cfg = self.model_config
        images = jax.ShapeDtypeStruct((1, *cfg.image_size, cfg.channels), jnp.float32)
        shapes = jax.eval_shape(self.model.init, jax.random.key(0), images)
        axes = {"model": nn.get_partition_spec(shapes)["params"]}
        if not self.is_fsq:
            axes["quantizer"] = {"codebook": P(None, None), "usage": P(None), "restarts": P()}
        return axes

    def trainable(self, params: Params) -> Params:
        """The networks train by gradient; the usage EMA, the restart count and an EMA codebook do not."""
        flags = {"model": jax.tree.map(lambda _: True, params["model"])}
        if "quantizer" in params:
            flags["quantizer"] = {
                "codebook": self.options.codebook == "straight_through",
                "usage": False,
                "restarts": False,
            }
        return flags

    # --- Quantization -----------------------------------------------------------------

    def quantize(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Code vectors `[B, h, w, code_dim]` -> `(z_q [B, h, w, code_dim], ids int32 [B, h, w])`."""
        if self.is_fsq:
            return q.quantize_fsq(z, self.options.levels)
        z_q, ids, _ = q.quantize_vq(z, params["quantizer"]["codebook"])
        return z_q, ids

    def tokenize(self, params: Params, images: jax.Array) -> jax.Array:
        """Normalized images `[B, H, W, C]` -> code ids int32 `[B, h, w]`."""
        z = self.model.apply({"params": params["model"]}, images, method=TokenizerModel.encode)
        return jax.lax.stop_gradient(self.quantize(params, z)[1])

    def codes_to_vectors(self, params: Params, codes: jax.Array) -> jax.Array:
        """Code ids int `[B, h, w]` -> quantized vectors `[B, h, w, code_dim]`."""
        if self.is_fsq:
            return q.fsq_ids_to_codes(codes, self.options.levels)
        return q.l2_normalize(params["quantizer"]["codebook"])[codes]

    def detokenize(self, params: Params, codes: jax.Array) -> jax.Array:
        """Code ids int `[B, h, w]` -> normalized images float32 `[B, H, W, C]`."""
        vectors = self.codes_to_vectors(params, codes)
        return self.model.apply({"params": params["model"]}, vectors, method=TokenizerModel.decode)

    # --- Training ---------------------------------------------------------------------

    def forward(self, params: Params, images: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`(reconstruction [B, H, W, C], ids [B, h, w], code vectors before quantization [B, h, w, code_dim])`."""
        z = self.model.apply({"params": params["model"]}, images, method=TokenizerModel.encode)
        z_q, ids = self.quantize(params, z)
        recon = self.model.apply({"params": params["model"]}, z_q, method=TokenizerModel.decode)
        return recon, ids, z

    def loss(
        self, params: Params, batch: Batch, rng: jax.Array, train: bool = True
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Pixel MSE (+ commitment, + codebook loss when straight-through); usage and perplexity metrics."""
        images = self._images(batch)
        recon, ids, z = self.forward(params, images)
        recon_loss = jnp.mean((recon - images.astype(jnp.float32)) ** 2)
        counts = q.code_counts(ids, self.vocab_size)
        metrics = {
            "recon_loss": recon_loss,
            "codebook_usage": q.codebook_usage(counts),
            "perplexity": q.code_perplexity(counts),
        }
        loss = recon_loss
        if not self.is_fsq:
            codebook = params["quantizer"]["codebook"]
            z_n = q.l2_normalize(z)
            codebook_loss, commitment = q.vq_losses(z_n, ids, codebook)
            loss = loss + self.options.commitment * commitment
            if self.options.codebook == "straight_through":
                loss = loss + codebook_loss
            metrics.update(commit_loss=commitment, restarted_codes=params["quantizer"]["restarts"])
            if train:
                metrics[STATE_INPUTS] = q.vq_statistics(z_n, ids, self.vocab_size, rng)
        metrics["loss"] = loss
        return loss, metrics

    def after_step(self, params: Params, state_inputs: dict | None, step: jax.Array) -> Params:
        """EMA codebook update (codebook=ema), usage EMA, and restarts of dead codes (VQ only)."""
        del step
        if self.is_fsq or state_inputs is None:
            return params
        opts, quant = self.options, params["quantizer"]
        codebook = quant["codebook"]
        if opts.codebook == "ema":
            codebook = q.ema_codebook_update(codebook, state_inputs["counts"], state_inputs["sums"], opts.ema_decay)
        usage = q.update_usage(quant["usage"], state_inputs["counts"], opts.usage_decay)
        codebook, usage, dead = q.restart_dead_codes(codebook, usage, state_inputs["candidates"], opts.dead_threshold)
        restarts = quant["restarts"] + jnp.sum(dead.astype(jnp.float32))
        return {**params, "quantizer": {"codebook": codebook, "usage": usage, "restarts": restarts}}

    # --- Evaluation -------------------------------------------------------------------

    def reconstruct(self, params: Params, batch: Batch, rng: jax.Array) -> dict[str, jax.Array]:
        """`reconstruction` `[B, H, W, C]` (normalized, through the codes) and `mask` `[B, N]`, all False:
        a tokenizer hides nothing."""
        del rng
        images = self._images(batch)
        recon = self.forward(params, images)[0]
        return {"reconstruction": recon, "mask": jnp.zeros((images.shape[0], self.model_config.num_patches), bool)}

    def features(self, params: Params, images: jax.Array, pool: str = "cls") -> jax.Array:
        """Tokenizer encoder features: `cls` / `mean` `[B, D]` or `tokens` `[B, 1 + N, D]`."""
        tokens = self.model.apply({"params": params["model"]}, images, method=TokenizerModel.encode_tokens)
        return pool_tokens(tokens, pool)


@register_method("vq")
def build_vq(config: ml_collections.ConfigDict) -> VQTokenizer:
    return VQTokenizer.from_config(config)
