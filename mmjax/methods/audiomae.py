"""Audio-MAE (Huang et al. 2022) on log-mel spectrograms, with A-JEPA's easy-to-hard mask curriculum.

Batches hold `spectrogram` `[B, frames, mels]` (made on device by the `audio` data
kind). The spectrogram is cut into `(time, frequency)` patches on a time-major grid.
`audiomae.masking`:
- `random`: MAE masking of `mask_ratio` of the patches (Audio-MAE's pretraining choice);
- `time_frequency`: whole time columns and frequency rows (`time_ratio`, `freq_ratio`);
- `curriculum`: per example, the time-frequency mask with a probability that ramps
  from 0 to 1 over `curriculum_steps` updates, else a random mask hiding the same
  number of patches (A-JEPA: from random to time-frequency-aware masks). The update
  count is a frozen `steps_seen` leaf of the params, advanced by `after_step`.
The loss is the MSE on hidden patches.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import ml_collections

from mmjax.config import dataclass_from_config
from mmjax.masking.dense import select_lowest, with_indices
from mmjax.masking.mask import Mask, random_mask
from mmjax.masking.schedules import curriculum_mask
from mmjax.masking.signals import time_frequency_mask
from mmjax.methods.grid_mae import GridMAE
from mmjax.methods.registry import register_method
from mmjax.models.grid_mae import GridDecoderConfig, GridEncoderConfig
from mmjax.ops.patches import as_pair, grid_shape, patchify

MASKINGS = ("random", "time_frequency", "curriculum")


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config, with Audio-MAE ViT-B defaults (16x16 patches, ratio 0.8)."""
    return ml_collections.ConfigDict(
        {
            "method": "audiomae",
            "model": {
                "width": 768,
                "depth": 12,
                "heads": 12,
                "mlp_dim": 3072,
                "dtype": "float32",
                "attention_impl": "xla",
                "remat": "none",
            },
            "decoder": {"width": 512, "depth": 8, "heads": 16, "mlp_dim": 2048},
            "audiomae": {
                "patch_size": (16, 16),
                "masking": "random",
                "mask_ratio": 0.8,
                "time_ratio": 0.5,
                "freq_ratio": 0.5,
                "curriculum_steps": 10000,
                "norm_pix_loss": False,
            },
        }
    )


@dataclasses.dataclass(frozen=True)
class AudioMAEOptions:
    patch_size: tuple[int, int] = (16, 16)
    masking: str = "random"
    mask_ratio: float = 0.8
    time_ratio: float = 0.5
    freq_ratio: float = 0.5
    curriculum_steps: int = 10000
    norm_pix_loss: bool = False

    def __post_init__(self):
        object.__setattr__(self, "patch_size", as_pair(self.patch_size, "audiomae.patch_size"))
        if self.masking not in MASKINGS:
            raise ValueError(f"audiomae.masking must be one of {MASKINGS}, got {self.masking!r}")
        for name in ("mask_ratio", "time_ratio", "freq_ratio"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"audiomae.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.curriculum_steps <= 0:
            raise ValueError(f"audiomae.curriculum_steps must be > 0, got {self.curriculum_steps}")


@dataclasses.dataclass(frozen=True)
class AudioMAE(GridMAE):
    """Audio-MAE over spectrograms of `spec_size` `(frames, mels)`."""

    spec_size: tuple[int, int] = (1024, 128)
    patch_size: tuple[int, int] = (16, 16)
    masking: str = "random"
    mask_ratio: float = 0.8
    time_ratio: float = 0.5
    freq_ratio: float = 0.5
    curriculum_steps: int = 10000

    input_key = "spectrogram"
    name = "audiomae"

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> AudioMAE:
        from mmjax.data.audio import spectrogram_shape

        options = dataclass_from_config(AudioMAEOptions, config.get("audiomae", {}), "audiomae")
        spec_size = spectrogram_shape(config.data)
        try:
            grid_shape(spec_size, options.patch_size)
        except ValueError as err:
            raise ValueError(
                f"spectrogram (frames, mels)={spec_size} from data.num_samples/n_fft/hop/num_mels must be "
                f"divisible by audiomae.patch_size={options.patch_size}"
            ) from err
        fields = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
        return cls(
            encoder=dataclass_from_config(GridEncoderConfig, config.model, "model"),
            decoder=dataclass_from_config(GridDecoderConfig, config.decoder, "decoder"),
            spec_size=spec_size,
            **fields,
        )

    @property
    def counts_steps(self) -> bool:
        return self.masking == "curriculum"

    @property
    def grid(self) -> tuple[int, int]:
        return grid_shape(self.spec_size, self.patch_size)

    @property
    def patch_dim(self) -> int:
        return self.patch_size[0] * self.patch_size[1]

    def patches(self, inputs: jax.Array) -> jax.Array:
        """`[B, frames, mels]` -> patch vectors `[B, N, p_t * p_f]`, time-major grid."""
        return patchify(inputs[..., None], self.patch_size)

    def make_mask(self, rng: jax.Array, batch_size: int, step: jax.Array) -> Mask:
        if self.masking == "random":
            return random_mask(rng, batch_size, self.grid[0] * self.grid[1], self.mask_ratio)
        k_easy, k_hard, k_pick = jax.random.split(rng, 3)
        hard = time_frequency_mask(k_hard, batch_size, self.grid, self.time_ratio, self.freq_ratio)
        if self.masking == "time_frequency":
            return hard
        # The easy mask hides exactly as many random patches as the hard one, so ids stay fixed-size.
        num_tokens, keep = hard.mask.shape[1], hard.ids_keep.shape[1]
        noise = jax.random.uniform(k_easy, (batch_size, num_tokens))
        easy = with_indices(select_lowest(noise, None, num_tokens - keep), keep)
        return curriculum_mask(k_pick, step, self.curriculum_steps, easy, hard)

    def eval_batches(self, data_config: Any, split: str, batch_size: int):
        from mmjax.data.audio import audio_eval_dataset

        return audio_eval_dataset(data_config, split, batch_size)


@register_method("audiomae")
def build_audiomae(config: ml_collections.ConfigDict) -> AudioMAE:
    return AudioMAE.from_config(config)


__all__ = ["AudioMAE", "MASKINGS", "build_audiomae", "default_config"]
