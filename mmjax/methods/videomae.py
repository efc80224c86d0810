"""VideoMAE (Tong et al. 2022): tubelet tokens, tube masking at 90%, MAE decoder, normalized-pixel MSE.

Batches hold `video` `[B, T, H, W, C]` (float, normalized by the `video` data kind).
The tube mask hides the same spatial positions in every time slot (REFERENCE.md), so a
hidden tubelet cannot be copied from the same place in a neighbouring frame. `mask.kind`
picks any generator that fits a video layout (`mmjax.masking.registry`): `tube` (the
paper's), `frame`, `spacetime` (ST-MAE), `running_cell` (VideoMAE V2) or `random`, each at
`videomae.mask_ratio`.
With `norm_pix_loss` each target tubelet vector is normalized: by default as a whole, MAE's
`(x - mean) / sqrt(var + 1e-6)`; with `norm_pix_style="videomae"` each channel over the
tubelet's pixels, `(x - mean) / (std + 1e-6)` (unbiased std), as the VideoMAE reference and HF
do. Those two also take the targets from the frames in [0, 1] units, `video * std + mean` with
the ImageNet statistics (`unnormalize_target`, which uses `data.mean` / `data.std`).
HF's architecture (no cls token, a flat sinusoid table, no encoder-to-decoder bias) is a set
of `model` / `decoder` knobs (`mmjax.models.grid_mae`); `mmjax.export.hf_videomae` sets them.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

from mmjax.config import ConfigError, dataclass_from_config, knob, section_config
from mmjax.losses import normalize_patches
from mmjax.masking.mask import Mask
from mmjax.masking.registry import MASKS, Layout, draw_mask, mask_section, resolve_mask
from mmjax.methods.grid_mae import GridMAE
from mmjax.methods.registry import register_method
from mmjax.models.grid_mae import GridDecoderConfig, GridEncoderConfig
from mmjax.ops.tubelets import as_triple, normalize_tubelet_channels, tubelet_grid, tubeletify
from mmjax.parts import Chosen

LAYOUT = "video"
PAPER_MASK = "tube"


@dataclasses.dataclass(frozen=True)
class VideoMAEOptions:
    """`videomae`: tubelets and masking, with VideoMAE's defaults."""

    tubelet_size: tuple[int, int, int] = knob((2, 16, 16), "(t, h, w) frames and pixels per tubelet token")
    mask_ratio: float = knob(
        0.9, "fraction hidden, as mask.kind counts it (tube: of the spatial positions)", low=0, high=1, high_open=True
    )
    norm_pix_loss: bool = knob(True, "normalize each target tubelet vector (mean 0, std 1)")
    norm_pix_style: str = knob(
        "mae",
        "mae: each vector as a whole, sqrt(var + eps); videomae: per channel, std + eps (reference, HF)",
        choices=("mae", "videomae"),
    )
    unnormalize_target: bool = knob(False, "targets from video * data.std + data.mean (reference, HF with RGB)")

    def __post_init__(self):
        object.__setattr__(self, "tubelet_size", as_triple(self.tubelet_size, "videomae.tubelet_size"))


def default_config() -> ml_collections.ConfigDict:
    """The method's fields, with VideoMAE ViT-B defaults (tubelet 2x16x16); generated from the declarations."""
    return ml_collections.ConfigDict(
        {
            "method": "videomae",
            "model": section_config(GridEncoderConfig),
            "decoder": section_config(GridDecoderConfig),
            "videomae": section_config(VideoMAEOptions),
            "mask": mask_section(LAYOUT, PAPER_MASK),
        }
    )


@dataclasses.dataclass(frozen=True)
class VideoMAE(GridMAE):
    """VideoMAE over clips of `video_size` `(T, H, W)` with `channels` channels; `mask_part` None = tube.

    `pixel_mean` / `pixel_std` (`data.mean` / `data.std`) undo the input normalization for the
    targets when `options.unnormalize_target` is set.
    """

    options: VideoMAEOptions = VideoMAEOptions()
    video_size: tuple[int, int, int] = (16, 224, 224)
    channels: int = 3
    mask_part: Chosen | None = None
    pixel_mean: tuple[float, ...] = ()
    pixel_std: tuple[float, ...] = ()

    def __post_init__(self):
        if self.mask_part is None:
            object.__setattr__(self, "mask_part", MASKS.choose(PAPER_MASK))
        if self.options.unnormalize_target:
            for name, value in (("data.mean", self.pixel_mean), ("data.std", self.pixel_std)):
                if len(value) != self.channels:
                    raise ConfigError(
                        f"{name}={value!r}: videomae.unnormalize_target needs one value per channel "
                        f"(data.channels={self.channels})"
                    )

    input_key = "video"
    name = "videomae"

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> VideoMAE:
        options = dataclass_from_config(VideoMAEOptions, config.videomae, "videomae")
        data = config.data
        video_size = (data.frames, *data.image_size)
        tubelet_grid(video_size, options.tubelet_size)  # fails early naming both sizes
        return cls(
            encoder=dataclass_from_config(GridEncoderConfig, config.model, "model"),
            decoder=dataclass_from_config(GridDecoderConfig, config.decoder, "decoder"),
            options=options,
            video_size=video_size,
            channels=data.channels,
            mask_part=resolve_mask(config.get("mask"), LAYOUT, PAPER_MASK),
            pixel_mean=tuple(data.get("mean", ())),
            pixel_std=tuple(data.get("std", ())),
        )

    @property
    def tubelet_size(self) -> tuple[int, int, int]:
        return self.options.tubelet_size

    @property
    def mask_ratio(self) -> float:
        return self.options.mask_ratio

    @property
    def grid(self) -> tuple[int, int, int]:
        return tubelet_grid(self.video_size, self.tubelet_size)

    @property
    def patch_dim(self) -> int:
        t, h, w = self.tubelet_size
        return t * h * w * self.channels

    def patches(self, inputs: jax.Array) -> jax.Array:
        """`[B, T, H, W, C]` -> tubelet vectors `[B, N, t*h*w*C]`."""
        return tubeletify(inputs, self.tubelet_size)

    def targets(self, patches: jax.Array) -> jax.Array:
        """Tubelet vectors `[B, N, t*h*w*C]` -> float32 targets, as `unnormalize_target` and `norm_pix_style` say."""
        x = patches.astype(jnp.float32)
        if self.options.unnormalize_target:
            b, n, dim = x.shape
            pixels = x.reshape(b, n, dim // self.channels, self.channels)
            x = (pixels * jnp.asarray(self.pixel_std) + jnp.asarray(self.pixel_mean)).reshape(b, n, dim)
        if not self.norm_pix_loss:
            return x
        if self.options.norm_pix_style == "videomae":
            return normalize_tubelet_channels(x, self.channels)
        return normalize_patches(x)

    def make_mask(self, rng: jax.Array, batch_size: int, step: jax.Array) -> Mask:
        del step
        return draw_mask(self.mask_part, rng, batch_size, Layout(LAYOUT, self.grid), self.mask_ratio, fixed_count=True)


@register_method("videomae", protocols=("kind_probe",))
def build_videomae(config: ml_collections.ConfigDict) -> VideoMAE:
    return VideoMAE.from_config(config)


__all__ = ["VideoMAE", "build_videomae", "default_config"]
