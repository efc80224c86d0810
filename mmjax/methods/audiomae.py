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

import jax
import ml_collections

from mmjax.config import dataclass_from_config, knob, section_config
from mmjax.data.audio import spectrogram_shape
from mmjax.masking.mask import Mask, random_mask
from mmjax.masking.schedules import time_frequency_curriculum_mask
from mmjax.masking.signals import time_frequency_mask
from mmjax.methods.grid_mae import GridMAE
from mmjax.methods.registry import register_method
from mmjax.models.grid_mae import GridDecoderConfig, GridEncoderConfig
from mmjax.ops.patches import as_pair, grid_shape, patchify

MASKINGS = ("random", "time_frequency", "curriculum")


@dataclasses.dataclass(frozen=True)
class AudioMAEOptions:
    """`audiomae`: patches and masking, with Audio-MAE's defaults (16x16 patches, ratio 0.8)."""

    patch_size: int | tuple[int, int] = knob((16, 16), "(time, frequency) bins per patch")
    masking: str = knob("random", "random | time_frequency | curriculum (see the module docstring)", choices=MASKINGS)
    mask_ratio: float = knob(0.8, "random masking: fraction of patches hidden", low=0, high=1, high_open=True)
    time_ratio: float = knob(0.5, "time_frequency: fraction of time columns hidden", low=0, high=1, high_open=True)
    freq_ratio: float = knob(0.5, "time_frequency: fraction of frequency rows hidden", low=0, high=1, high_open=True)
    curriculum_steps: int = knob(10000, "curriculum: updates over which hard masks ramp from 0 to 1", low=1)
    norm_pix_loss: bool = knob(False, "normalize each target patch (mean 0, std 1)")

    def __post_init__(self):
        object.__setattr__(self, "patch_size", as_pair(self.patch_size, "audiomae.patch_size"))


def default_config() -> ml_collections.ConfigDict:
    """The method's fields, with Audio-MAE ViT-B defaults (decoder 512 wide, 8 blocks); from the declarations."""
    return ml_collections.ConfigDict(
        {
            "method": "audiomae",
            "model": section_config(GridEncoderConfig),
            "decoder": section_config(GridDecoderConfig, width=512, depth=8, heads=16, mlp_dim=2048),
            "audiomae": section_config(AudioMAEOptions),
        }
    )


@dataclasses.dataclass(frozen=True)
class AudioMAE(GridMAE):
    """Audio-MAE over spectrograms of `spec_size` `(frames, mels)`."""

    options: AudioMAEOptions = AudioMAEOptions()
    spec_size: tuple[int, int] = (1024, 128)

    input_key = "spectrogram"
    name = "audiomae"

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> AudioMAE:
        options = dataclass_from_config(AudioMAEOptions, config.audiomae, "audiomae")
        spec_size = spectrogram_shape(config.data)
        try:
            grid_shape(spec_size, options.patch_size)
        except ValueError as err:
            raise ValueError(
                f"spectrogram (frames, mels)={spec_size} from data.num_samples/n_fft/hop/num_mels must be "
                f"divisible by audiomae.patch_size={options.patch_size}"
            ) from err
        return cls(
            encoder=dataclass_from_config(GridEncoderConfig, config.model, "model"),
            decoder=dataclass_from_config(GridDecoderConfig, config.decoder, "decoder"),
            options=options,
            spec_size=spec_size,
        )

    @property
    def patch_size(self) -> tuple[int, int]:
        return self.options.patch_size

    @property
    def masking(self) -> str:
        return self.options.masking

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
        o = self.options
        if o.masking == "random":
            return random_mask(rng, batch_size, self.grid[0] * self.grid[1], o.mask_ratio)
        if self.masking == "time_frequency":
            return time_frequency_mask(jax.random.split(rng, 3)[1], batch_size, self.grid, o.time_ratio, o.freq_ratio)
        return time_frequency_curriculum_mask(
            rng, batch_size, self.grid, o.time_ratio, o.freq_ratio, step, o.curriculum_steps
        )


@register_method("audiomae", protocols=("kind_probe",))
def build_audiomae(config: ml_collections.ConfigDict) -> AudioMAE:
    return AudioMAE.from_config(config)


__all__ = ["AudioMAE", "MASKINGS", "build_audiomae", "default_config"]
