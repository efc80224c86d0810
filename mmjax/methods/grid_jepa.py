"""I-JEPA over any token grid: A-JEPA on spectrograms, V-JEPA-style on video tubelets.

The I-JEPA method (`mmjax.methods.jepa`: EMA target encoder, narrow predictor, smooth L1 on
layer-normed target features, the momentum schedule) with the image ViT replaced by
`GridPatchEncoder`s over patch vectors of the data kind's grid, as Audio-MAE and VideoMAE cut
them (`mmjax.methods.audiomae`, `mmjax.methods.videomae`):

- `data.kind=audio`: spectrogram `[B, frames, mels]` -> `(time, frequency)` patches on a
  time-major 2-D grid (A-JEPA, Fei et al. 2023);
- `data.kind=video`: clips `[B, T, H, W, C]` -> tubelets on a `(T', H', W')` grid (V-JEPA,
  Bardes et al. 2024).

`gridjepa.targets` says what the predictor predicts:
- `blocks`: I-JEPA's multi-block masks (`jepa.*`) on the 2-D grid; for video on the spatial
  grid, each block extended over every time slot (`mmjax.masking.tube_blocks`), V-JEPA's 3-D
  multi-block masks;
- `mask`: any fixed-count mask kind of the layout (`mask.kind`, at `gridjepa.mask_ratio`): the
  visible tokens are the context and all hidden ones one target set
  (`mmjax.masking.mask_as_blocks`). A-JEPA's curriculum is `mask.kind=curriculum` (random
  masks first, time-frequency ones with a chance rising over `mask.curriculum.ramp_share` of
  training: the step is the frozen `steps_seen` leaf of the params). A-JEPA's easy masks are
  random *block* masks; here they are random patches of the same count, so that both kinds
  have one fixed size (a deliberate simplification).

Params are JEPA's plus `steps_seen`; `features` are the target encoder's mean patch token, probed
by the data kind's `kind_probe` protocol.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import PartitionSpec as P

from mmjax.config import ConfigError, dataclass_from_config, knob, section_config
from mmjax.data.audio import spectrogram_shape
from mmjax.masking.multiblock import MultiBlockMasks, mask_as_blocks, tube_blocks
from mmjax.masking.registry import Layout, check_scores, draw_mask, mask_section, resolve_mask
from mmjax.methods.cluster_targets import ClusterOptions
from mmjax.methods.jepa import JEPA, JEPAOptions
from mmjax.methods.protocol import Batch, Params
from mmjax.methods.registry import register_method
from mmjax.models.grid_mae import GridEncoderConfig, grid_positions
from mmjax.models.jepa import JEPAModel, PredictorConfig
from mmjax.ops.patches import grid_shape, patchify
from mmjax.ops.tubelets import tubelet_grid, tubeletify
from mmjax.parts import Chosen

TARGETS = ("blocks", "mask")
# data.kind -> (the batch entry the method reads, the mask layout, the paper's mask.kind for targets=mask)
INPUTS = {"audio": ("spectrogram", "grid", "curriculum"), "video": ("video", "video", "tube")}


def mask_layout(config: ml_collections.ConfigDict) -> str:
    """The mask layout (`mmjax.masking.registry.LAYOUTS`) of `config`'s data kind: `grid` (audio) or `video`."""
    kind = config.data.get("kind", "images")
    if kind not in INPUTS:
        raise ConfigError(f"data.kind={kind!r}: grid_jepa reads {sorted(INPUTS)} data (method=jepa reads images)")
    return INPUTS[kind][1]


@dataclasses.dataclass(frozen=True)
class GridJEPAOptions:
    """`gridjepa`: the tokens and what the predictor predicts."""

    patch_size: tuple[int, ...] = knob(
        (2, 16, 16), "(t, h, w) frames and pixels per tubelet for video; (time, frequency) bins for spectrograms"
    )
    targets: str = knob(
        "blocks", "blocks: I-JEPA's multi-block targets (video: over every frame); mask: mask.kind's", choices=TARGETS
    )
    mask_ratio: float = knob(
        0.75, "targets=mask: share of the tokens hidden (the predicted ones)", low=0, high=1, high_open=True
    )

    def __post_init__(self):
        object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))


def default_config(data_kind: str = "video") -> ml_collections.ConfigDict:
    """The method's fields for `data_kind` ("audio" or "video"): I-JEPA's defaults, encoders without a cls token."""
    if data_kind not in INPUTS:
        raise ValueError(f"grid_jepa reads data.kind in {sorted(INPUTS)}, got {data_kind!r}")
    _, layout, paper_mask = INPUTS[data_kind]
    return ml_collections.ConfigDict(
        {
            "method": "grid_jepa",
            "model": section_config(GridEncoderConfig, cls_token=False),
            "predictor": section_config(PredictorConfig),
            "jepa": section_config(JEPAOptions),
            "gridjepa": section_config(GridJEPAOptions, patch_size=(16, 16) if data_kind == "audio" else (2, 16, 16)),
            "mask": mask_section(layout, paper_mask),
            "capi": section_config(ClusterOptions),
        }
    )


@dataclasses.dataclass(frozen=True)
class GridJEPA(JEPA):
    """I-JEPA whose inputs are the data kind's patch vectors `[B, N, P]` on `grid`.

    `input_key` is the batch entry (`spectrogram` or `video`), `layout` the mask layout
    (`grid` or `video`), `channels` the video's (1 for spectrograms).
    """

    grid_options: GridJEPAOptions = GridJEPAOptions()
    grid: tuple[int, ...] = (8, 14, 14)
    input_key: str = "video"
    layout: str = "video"
    channels: int = 3
    mask_part: Chosen | None = None

    name = "grid_jepa"

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> GridJEPA:
        data = config.data
        layout = mask_layout(config)
        kind = data.kind
        input_key, _, paper_mask = INPUTS[kind]
        options = dataclass_from_config(GridJEPAOptions, config.gridjepa, "gridjepa")
        rank = 3 if kind == "video" else 2
        if len(options.patch_size) != rank:
            raise ConfigError(
                f"gridjepa.patch_size={options.patch_size}: data.kind={kind!r} needs {rank} sizes "
                f"({'(t, h, w)' if rank == 3 else '(time, frequency)'})"
            )
        if kind == "video":
            size = (data.frames, *data.image_size)
            grid, channels = tubelet_grid(size, options.patch_size), int(data.channels)
        else:
            size = spectrogram_shape(data)
            try:
                grid = grid_shape(size, options.patch_size)
            except ValueError as err:
                raise ConfigError(
                    f"gridjepa.patch_size={options.patch_size} must divide the spectrogram (frames, mels)={size}"
                ) from err
            channels = 1
        encoder = dataclass_from_config(GridEncoderConfig, config.model, "model")
        if encoder.cls_token:
            raise ConfigError("model.cls_token=True: I-JEPA's encoders have no cls token; set model.cls_token=False")
        predictor = dataclass_from_config(PredictorConfig, config.predictor, "predictor")
        try:
            grid_positions(grid, predictor.width)
        except ValueError as err:
            raise ConfigError(f"predictor.width={predictor.width} cannot carry sin-cos positions of {grid}") from err
        if options.targets == "blocks" and min(grid[-2:]) < 2:
            raise ConfigError(f"gridjepa.targets=blocks needs a block grid of at least 2 x 2, got {grid[-2:]}")
        mask_part = resolve_mask(config.get("mask"), layout, paper_mask)
        check_scores(mask_part, (), "grid_jepa")
        steps = int(config.train.steps) if "train" in config else 1
        if steps < 1:
            raise ConfigError(f"train.steps must be positive for the EMA momentum schedule, got {steps}")
        return cls(
            model_config=encoder,
            predictor_config=predictor,
            options=dataclass_from_config(JEPAOptions, config.jepa, "jepa"),
            total_steps=steps,
            clusters=dataclass_from_config(ClusterOptions, config.get("capi") or {}, "capi"),
            grid_options=options,
            grid=tuple(grid),
            input_key=input_key,
            layout=layout,
            channels=channels,
            mask_part=mask_part,
        )

    @property
    def model(self) -> JEPAModel:
        return JEPAModel(self.model_config, self.predictor_config, self.grid)

    @property
    def num_tokens(self) -> int:
        return math.prod(self.grid)

    @property
    def patch_dim(self) -> int:
        return math.prod(self.grid_options.patch_size) * self.channels

    def patches(self, inputs: jax.Array) -> jax.Array:
        """`[B, T, H, W, C]` video or `[B, frames, mels]` spectrogram -> patch vectors `[B, N, P]` in grid order."""
        if self.input_key == "video":
            return tubeletify(inputs, self.grid_options.patch_size)
        return patchify(inputs[..., None], self.grid_options.patch_size)

    def _images(self, batch: Batch) -> jax.Array:
        if self.input_key not in batch:
            raise KeyError(f"grid_jepa batches need a {self.input_key!r} entry; got keys {sorted(batch)}")
        return self.patches(batch[self.input_key])

    def _example_input(self) -> jax.Array:
        return jnp.zeros((1, self.num_tokens, self.patch_dim))

    @property
    def block_grid(self) -> tuple[int, int]:
        """I-JEPA's blocks are drawn on the last two axes: the spectrogram grid, or a clip's spatial grid."""
        return self.grid[-2:]

    def make_masks(self, rng: jax.Array, batch_size: int, step: jax.Array | None = None) -> MultiBlockMasks:
        """`gridjepa.targets`: multi-block masks (video: lifted over time), or `mask.kind`'s as one target set."""
        if self.grid_options.targets == "mask":
            layout = Layout(self.layout, self.grid, step=step, total_steps=self.total_steps)
            mask = draw_mask(self.mask_part, rng, batch_size, layout, self.grid_options.mask_ratio, fixed_count=True)
            return mask_as_blocks(mask)
        masks = super().make_masks(rng, batch_size)
        return tube_blocks(masks, self.grid[0]) if len(self.grid) == 3 else masks

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        return {**super().init(rng, batch), "steps_seen": jnp.zeros((), jnp.float32)}

    def param_axes(self) -> Params:
        return {**super().param_axes(), "steps_seen": P()}

    # Its encoder reads token vectors of video or spectrograms, not images: no image encoder to export.
    encoder = None

    def features(self, params: Params, inputs: jax.Array, pool: str = "mean") -> jax.Array:
        """Target-encoder features of whole inputs (video or spectrogram, as batches hold them); see `JEPA.features`."""
        return super().features(params, self.patches(inputs), pool)


@register_method("grid_jepa", protocols=("kind_probe",))
def build_grid_jepa(config: ml_collections.ConfigDict) -> GridJEPA:
    return GridJEPA.from_config(config)


__all__ = ["INPUTS", "TARGETS", "GridJEPA", "GridJEPAOptions", "build_grid_jepa", "default_config", "mask_layout"]
