"""LocalMIM (Wang et al. 2023, "Masked Image Modeling with Local Multi-Scale Reconstruction"): the
reconstruction task at several encoder blocks, lower blocks at finer scales.

An add-on term of MAE (`LocalMIMTerm`, section `localmim`, params `params["localmim"]`): the
outputs of the encoder blocks `localmim.blocks`
(1-based) each get a light decoder of their own (a LayerNorm, then MAE's decoder at
`localmim.decoder_*` size: mask tokens, position table, blocks, a linear head); block `blocks[i]`
predicts, for every hidden patch, its pixels normalized per `regions[i] x regions[i]` region
(`subregion_norm_pixels`; the paper's "divide the input under different scales, then extract a
descriptor" with normalized pixels as the descriptor). MAE's own decoder on the last block keeps
the patch-sized target, the coarsest. Regions must tile a patch: LocalMIM's coarser-than-a-patch
scales (pooled tokens) are not built, so on MNIST's 4-pixel patches the scales are 2 and 4 pixels.
The loss is MAE's plus `localmim.weight` times the mean of the local losses (MSE on hidden patches).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.config import ConfigError, knob
from mmjax.losses import masked_mse, normalize_patches
from mmjax.methods.protocol import Params
from mmjax.methods.terms import Step, Term, register_term
from mmjax.models.config import DecoderConfig, ViTConfig
from mmjax.models.mae import MAEDecoder
from mmjax.models.transformer import layer_norm
from mmjax.ops.patches import patchify


@dataclasses.dataclass(frozen=True)
class LocalMIMOptions:
    """`localmim`: local decoders on intermediate encoder blocks; `blocks=()` is MAE."""

    blocks: tuple[int, ...] = knob((), "encoder blocks (1-based) whose outputs are decoded (LocalMIM); () = MAE")
    regions: tuple[int, ...] = knob((), "region size in pixels of each block's target; each tiles a patch")
    weight: float = knob(1.0, "weight of the mean local loss next to MAE's", low=0)
    decoder_width: int = knob(64, "width of each local decoder", low=1)
    decoder_depth: int = knob(1, "transformer blocks of each local decoder", low=0)
    decoder_heads: int = knob(4, "attention heads of each local decoder", low=1)

    @property
    def enabled(self) -> bool:
        return bool(self.blocks)

    @property
    def decoder(self) -> DecoderConfig:
        w = self.decoder_width
        return DecoderConfig(width=w, depth=self.decoder_depth, heads=self.decoder_heads, mlp_dim=4 * w)

    def check(self, depth: int, patch: tuple[int, int], scan: bool) -> None:
        """One `ConfigError` line for blocks or regions this encoder cannot serve."""
        if len(self.blocks) != len(self.regions):
            raise ConfigError(
                f"localmim.blocks={self.blocks} and localmim.regions={self.regions}: expected one region per block"
            )
        if any(not 1 <= b <= depth for b in self.blocks) or len(set(self.blocks)) != len(self.blocks):
            raise ConfigError(f"localmim.blocks={self.blocks}: expected distinct block numbers in 1..{depth}")
        if any(r < 1 or patch[0] % r or patch[1] % r for r in self.regions):
            raise ConfigError(f"localmim.regions={self.regions}: each region must tile the {patch} patch")
        if self.enabled and scan:
            raise ConfigError("localmim.blocks needs the encoder's block outputs: expected model.scan=False")


def subregion_norm_pixels(images: jax.Array, patch: tuple[int, int], region: int) -> jax.Array:
    """Each patch's pixels, normalized per `region x region` sub-region: `[B, H, W, C]` -> `[B, N, p_h * p_w * C]`.

    In MAE's patch order (row, column, channel); `region` = the patch size is MAE's norm-pix target.
    Each sub-region is normalized by its own mean and unbiased variance (`normalize_patches`).
    """
    ph, pw = patch
    c = images.shape[-1]
    x = patchify(images, patch).astype(jnp.float32)
    b, n, _ = x.shape
    x = x.reshape(b, n, ph // region, region, pw // region, region, c).transpose(0, 1, 2, 4, 3, 5, 6)
    x = normalize_patches(x.reshape(b, n, ph // region, pw // region, region * region * c))
    x = x.reshape(b, n, ph // region, pw // region, region, region, c).transpose(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(b, n, ph * pw * c)


class LocalDecoders(nn.Module):
    """One light decoder per block: block b's output `out["block{b}"]` through a LayerNorm (`norms_i`) and
    an `MAEDecoder` of `decoder`'s size (`decoders_i`) -> one `[B, N, p_h p_w C]` prediction per block."""

    config: ViTConfig
    decoder: DecoderConfig
    blocks: tuple[int, ...]

    @nn.compact
    def __call__(self, out: dict[str, jax.Array], ids_restore: jax.Array) -> tuple[jax.Array, ...]:
        eps = self.config.layer_norm_eps
        return tuple(
            MAEDecoder(self.config, self.decoder, name=f"decoders_{i}")(
                layer_norm(eps, jnp.float32, f"norms_{i}")(out[f"block{b}"]), ids_restore
            )[0]
            for i, b in enumerate(self.blocks)
        )


@register_term("mae")
@dataclasses.dataclass(frozen=True)
class LocalMIMTerm(Term):
    """LocalMIM's term: `weight` times the mean of the local decoders' losses on the counted patches."""

    section = "localmim"
    options = LocalMIMOptions

    opts: LocalMIMOptions
    model_config: ViTConfig

    @classmethod
    def build(cls, options: LocalMIMOptions, base: Any) -> LocalMIMTerm | None:
        cfg = base.model_config
        options.check(cfg.depth, cfg.patch_size, cfg.scan)
        return cls(options, cfg) if options.enabled else None

    @property
    def module(self) -> LocalDecoders:
        return LocalDecoders(self.model_config, self.opts.decoder, self.opts.blocks)

    def init(self, rng: jax.Array, step: Step) -> Params:
        return self.module.init(rng, step.out, step.mask.ids_restore)["params"]

    def predictions(self, params: Params, step: Step) -> tuple[jax.Array, ...]:
        """Each local block's predictions `[B, N, p_h p_w C]`; `params` are the method's."""
        return self.module.apply({"params": params[self.section]}, step.out, step.mask.ids_restore)

    def loss(self, step: Step) -> tuple[jax.Array, dict[str, jax.Array]]:
        images, patch = step.batch["image"], self.model_config.patch_size
        local = [
            masked_mse(p, subregion_norm_pixels(images, patch, r), step.counted)
            for p, r in zip(self.predictions(step.params, step), self.opts.regions, strict=True)
        ]
        metrics = {f"local_loss_block_{b}": v for b, v in zip(self.opts.blocks, local, strict=True)}
        return self.opts.weight * jnp.mean(jnp.stack(local)), metrics


__all__ = ["LocalDecoders", "LocalMIMOptions", "LocalMIMTerm", "subregion_norm_pixels"]
