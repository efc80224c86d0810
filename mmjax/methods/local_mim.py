"""LocalMIM (Wang et al. 2023, "Masked Image Modeling with Local Multi-Scale Reconstruction"): the
reconstruction task at several encoder blocks, lower blocks at finer scales.

On MAE (`mae.py`, section `localmim`): the outputs of the encoder blocks `localmim.blocks`
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

import jax
import jax.numpy as jnp

from mmjax.config import ConfigError, knob
from mmjax.losses import normalize_patches
from mmjax.models.config import DecoderConfig
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


__all__ = ["LocalMIMOptions", "subregion_norm_pixels"]
