"""Mask generators by name: `mask.kind` in a method's config picks one that fits the method's token layout.

Each kind is registered once (`MASKS`), with the token layouts it fits, its argument
declaration (a frozen dataclass of `knob`s) and a function
`(key, batch_size, layout, ratio, args) -> Mask`. The ratio is the method's own knob
(`mae.mask_ratio`, `simmim.mask_ratio`, ...: the paper's default); the kind chooses the
shape. Layouts (`Layout.kind`, with `Layout.shape`):

  grid      `(H, W)` patch grid: images, spectrograms (row-major tokens)
  video     `(T, H, W)` tubelet grid
  sequence  `(N,)` tokens of a sequence
  series    `(V, P)` variates x patches of a multivariate series
  points    `(G,)` point-cloud groups

Guided kinds (`prior_guided`) hide tokens by a per-token score map that the method supplies
in `Layout.scores` (the names are `SCORES`); a method that cannot supply a kind's map
refuses it when it is built (`check_scores`).

`draw_mask` draws a chosen kind; with `fixed_count=True` (a sparse encoder, MAE) a kind
whose hidden count varies is adapted to exactly `int(N * (1 - ratio))` visible tokens by
`fixed_count_mask`. `UTILITIES` lists what `mmjax.masking` exports that is not a mask
generator, each with the reason.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp

from mmjax.config import ConfigError, knob
from mmjax.masking.blockwise import blockwise_mask
from mmjax.masking.dense import fixed_count_mask, simmim_mask
from mmjax.masking.guided import attention_guided_mask, hard_patch_mask, prior_guided_mask
from mmjax.masking.mask import Mask, num_visible_tokens, random_mask
from mmjax.masking.points import region_mask
from mmjax.masking.schedules import time_frequency_curriculum_mask
from mmjax.masking.signals import spec_band_mask, time_frequency_mask, variate_patch_mask
from mmjax.masking.video import frame_mask, running_cell_mask, spacetime_mask, tube_mask
from mmjax.parts import Chosen, Parts

LAYOUTS = ("grid", "video", "sequence", "series", "points")

# The per-token score maps `[B, N]` a guided kind may read from `Layout.scores`, and what each is.
SCORES: dict[str, str] = {
    "pixel_std": "standard deviation of each patch's input pixels: a saliency prior (MAE, SimMIM)",
    "predicted_loss": "an EMA loss predictor's reconstruction loss for each patch of the whole image (HPM; MAE)",
    "attention": "an EMA teacher's last-block [CLS] attention over the patches of the whole image (AttMask; MAE)",
}


@dataclasses.dataclass(frozen=True)
class Layout:
    """The token layout facts a mask generator needs: `kind` (one of `LAYOUTS`) and `shape`.

    `centers` (points only, optional): float `[B, G, 3]` patch centers, for kinds that mask
    by position (`region`). `scores` (optional): name (one of `SCORES`) -> float `[B, N]`, for
    guided kinds. `step` (optional, may be traced) and `total_steps`: where training is, for
    kinds that follow a curriculum (`hard_patch`).
    """

    kind: str
    shape: tuple[int, ...]
    centers: jax.Array | None = None
    scores: Mapping[str, jax.Array] | None = None
    step: jax.Array | None = None
    total_steps: int = 1

    def __post_init__(self):
        if self.kind not in LAYOUTS:
            raise ValueError(f"layout kind must be one of {LAYOUTS}, got {self.kind!r}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    @property
    def num_tokens(self) -> int:
        return math.prod(self.shape)

    def score(self, name: str, kind: str) -> jax.Array:
        """The `[B, N]` score map `name` that mask kind `kind` reads; a clear error when it is absent."""
        if not self.scores or name not in self.scores:
            raise ValueError(
                f"mask.kind={kind!r} reads the {name!r} score map; this layout has {sorted(self.scores or {})}"
            )
        values = self.scores[name]
        if values.ndim != 2 or values.shape[1] != self.num_tokens:
            raise ValueError(f"score map {name!r} must be [B, {self.num_tokens}], got {values.shape}")
        return values


MASKS = Parts("mask", "mask kind")


def hidden_count(num_tokens: int, ratio: float) -> int:
    """Tokens hidden at `ratio`: `N - int(N * (1 - ratio))`, MAE's count (the complement of `num_visible_tokens`)."""
    return num_tokens - num_visible_tokens(num_tokens, ratio)


@MASKS.register("random", fits=LAYOUTS, doc="MAE: hide N - int(N (1 - ratio)) tokens uniformly at random")
def _random(key, batch_size, layout, ratio, args):
    return random_mask(key, batch_size, layout.num_tokens, ratio)


@dataclasses.dataclass(frozen=True)
class BlockwiseArgs:
    """`mask.blockwise`: BEiT's block-wise mask; the patch budget is the method's hidden count at its ratio."""

    min_block: int = knob(16, "smallest block area in patches (BEiT: 16 at a 14 x 14 grid)", low=1)
    max_block: int | None = knob(None, "largest block area; None = the budget", low=1)
    min_aspect: float = knob(0.3, "smallest block aspect ratio", low=0, low_open=True)
    max_aspect: float | None = knob(None, "largest aspect ratio; None = 1 / min_aspect", low=0, low_open=True)
    max_tries: int = knob(10, "rectangles drawn per block before giving up", low=1)


@MASKS.register("blockwise", fits=("grid",), args=BlockwiseArgs, doc="BEiT: random rectangles up to the budget")
def _blockwise(key, batch_size, layout, ratio, args):
    budget = hidden_count(layout.num_tokens, ratio)
    if budget == 0:
        return Mask(mask=jnp.zeros((batch_size, layout.num_tokens), bool))
    return blockwise_mask(key, batch_size, layout.shape, budget, **dataclasses.asdict(args))


@dataclasses.dataclass(frozen=True)
class CellsArgs:
    """`mask.cells`: SimMIM's coarse mask; SimMIM itself takes the cell side from `simmim.mask_patch`."""

    mask_patch: int = knob(2, "cell side in tokens (2 tokens of 16 px = SimMIM's 32 px mask patches)", low=1)


@MASKS.register("cells", fits=("grid",), args=CellsArgs, doc="SimMIM: ceil(cells * ratio) random cells of tokens")
def _cells(key, batch_size, layout, ratio, args):
    return simmim_mask(key, batch_size, layout.shape, args.mask_patch, ratio)


@dataclasses.dataclass(frozen=True)
class TimeFrequencyArgs:
    """`mask.time_frequency`: Audio-MAE's whole rows (time) and columns (frequency); the amount is set here."""

    time_ratio: float = knob(0.2, "fraction of grid rows hidden", low=0, high=1)
    freq_ratio: float = knob(0.2, "fraction of grid columns hidden", low=0, high=1)


@MASKS.register("time_frequency", fits=("grid",), args=TimeFrequencyArgs, doc="Audio-MAE: whole rows and columns")
def _time_frequency(key, batch_size, layout, ratio, args):
    del ratio  # its own ratios set the amount; a sparse encoder adapts the count to its ratio
    return time_frequency_mask(key, batch_size, layout.shape, args.time_ratio, args.freq_ratio)


@dataclasses.dataclass(frozen=True)
class CurriculumArgs:
    """`mask.curriculum`: A-JEPA's easy-to-hard masks, random patches first, whole rows and columns later."""

    time_ratio: float = knob(0.5, "hard mask: fraction of grid rows (time) hidden", low=0, high=1, high_open=True)
    freq_ratio: float = knob(
        0.5, "hard mask: fraction of grid columns (frequency) hidden", low=0, high=1, high_open=True
    )
    ramp_share: float = knob(
        0.5, "share of train.steps over which the chance of the hard mask rises 0 -> 1", low=0, high=1, low_open=True
    )


@MASKS.register(
    "curriculum",
    fits=("grid",),
    args=CurriculumArgs,
    doc="A-JEPA: random masks at first, time-frequency ones with a chance rising over training",
)
def _curriculum(key, batch_size, layout, ratio, args):
    del ratio  # its ratios set the count (the random mask hides as many); a sparse encoder adapts it
    step = jnp.zeros(()) if layout.step is None else layout.step
    ramp_steps = max(1, round(args.ramp_share * layout.total_steps))
    return time_frequency_curriculum_mask(
        key, batch_size, layout.shape, args.time_ratio, args.freq_ratio, step, ramp_steps
    )


@dataclasses.dataclass(frozen=True)
class SpecBandArgs:
    """`mask.spec_band`: SpecAugment bands of random width along rows (time) and columns (frequency)."""

    num_time_bands: int = knob(2, "row bands", low=0)
    max_time_width: int = knob(4, "widest row band", low=0)
    num_freq_bands: int = knob(2, "column bands", low=0)
    max_freq_width: int = knob(2, "widest column band", low=0)


@MASKS.register("spec_band", fits=("grid",), args=SpecBandArgs, doc="SpecAugment: bands of rows and columns")
def _spec_band(key, batch_size, layout, ratio, args):
    del ratio  # its own widths set the amount
    return spec_band_mask(key, batch_size, layout.shape, **dataclasses.asdict(args))


@MASKS.register("tube", fits=("video",), own_count=True, doc="VideoMAE: one random spatial mask shared by every frame")
def _tube(key, batch_size, layout, ratio, args):
    return tube_mask(key, batch_size, layout.shape, ratio)


@MASKS.register("frame", fits=("video",), own_count=True, doc="whole frames hidden: int(ratio T) of them")
def _frame(key, batch_size, layout, ratio, args):
    return frame_mask(key, batch_size, layout.shape, ratio)


@MASKS.register("spacetime", fits=("video",), doc="ST-MAE: random over all spacetime tokens")
def _spacetime(key, batch_size, layout, ratio, args):
    return spacetime_mask(key, batch_size, layout.shape, ratio)


@dataclasses.dataclass(frozen=True)
class RunningCellArgs:
    """`mask.running_cell`: VideoMAE V2's running cell."""

    cell: tuple[int, int] = knob((2, 2), "cell (rows, cols) whose hidden pattern shifts each frame")


@MASKS.register(
    "running_cell", fits=("video",), args=RunningCellArgs, own_count=True, doc="VideoMAE V2: shifting cell pattern"
)
def _running_cell(key, batch_size, layout, ratio, args):
    return running_cell_mask(key, batch_size, layout.shape, args.cell, ratio)


@dataclasses.dataclass(frozen=True)
class VariatePatchArgs:
    """`mask.variate_patch`: PatchTST's per-variate patch mask."""

    shared: bool = knob(False, "the same patches hidden in every variate")


@MASKS.register("variate_patch", fits=("series",), args=VariatePatchArgs, doc="PatchTST: patches per variate")
def _variate_patch(key, batch_size, layout, ratio, args):
    return variate_patch_mask(key, batch_size, *layout.shape, ratio, shared=args.shared)


@dataclasses.dataclass(frozen=True)
class RegionArgs:
    """`mask.region`: hide the point groups nearest to random seed groups (contiguous regions)."""

    num_regions: int = knob(1, "seed groups per cloud (1 = Point-MAE's block masking)", low=1)


@MASKS.register("region", fits=("points",), args=RegionArgs, doc="Point-MAE block: groups nearest to random seeds")
def _region(key, batch_size, layout, ratio, args):
    if layout.centers is None:
        raise ValueError("mask.kind='region' needs the points layout's group centers (Layout.centers)")
    if layout.centers.shape[:2] != (batch_size, layout.num_tokens):
        raise ValueError(f"Layout.centers {layout.centers.shape} is not [{batch_size}, {layout.num_tokens}, 3]")
    return region_mask(key, layout.centers, ratio, num_regions=args.num_regions)


@dataclasses.dataclass(frozen=True)
class PriorGuidedArgs:
    """`mask.prior_guided`: hide tokens sampled without replacement with probability softmax(prior / T)."""

    prior: str = knob("pixel_std", f"the score map that is the prior; one of {tuple(SCORES)}", choices=tuple(SCORES))
    temperature: float = knob(1.0, "T; small T tends to the highest-scoring tokens", low=0, low_open=True)


@MASKS.register(
    "prior_guided",
    fits=("grid",),
    args=PriorGuidedArgs,
    needs=lambda args: (args.prior,),
    doc="SemMAE-style prior: Gumbel top-k of a score map (default: patch pixel std)",
)
def _prior_guided(key, batch_size, layout, ratio, args):
    return prior_guided_mask(key, layout.score(args.prior, "prior_guided"), ratio, temperature=args.temperature)


@dataclasses.dataclass(frozen=True)
class HardPatchArgs:
    """`mask.hard_patch`: HPM's easy-to-hard share of the hidden patches chosen by predicted loss."""

    alpha_start: float = knob(0.0, "share of the hidden count taken by predicted loss at step 0", low=0, high=1)
    alpha_end: float = knob(0.5, "that share at the last step (HPM: 0.5; the rest stay random)", low=0, high=1)


@MASKS.register(
    "hard_patch",
    fits=("grid",),
    args=HardPatchArgs,
    needs=("predicted_loss",),
    doc="HPM: hide the patches with the highest predicted loss, a growing share over training",
)
def _hard_patch(key, batch_size, layout, ratio, args):
    step = jnp.zeros(()) if layout.step is None else layout.step
    scores = layout.score("predicted_loss", "hard_patch")
    return hard_patch_mask(
        key, scores, ratio, step, layout.total_steps, alpha_start=args.alpha_start, alpha_end=args.alpha_end
    )


@dataclasses.dataclass(frozen=True)
class AttentionGuidedArgs:
    """`mask.attention_guided`: AttMask's choice of patches from the teacher's [CLS] attention."""

    mode: str = knob(
        "high",
        "high: hide the most attended; low: the least; hint: the most, a few revealed",
        choices=("high", "low", "hint"),
    )
    hint_ratio: float = knob(0.1, "hint mode: share of the hidden count revealed again", low=0, high=1)
    random_fraction: float = knob(0.0, "share of the hidden count drawn at random instead", low=0, high=1)


@MASKS.register(
    "attention_guided",
    fits=("grid",),
    args=AttentionGuidedArgs,
    needs=("attention",),
    doc="AttMask: hide the patches a teacher's [CLS] token attends to most (or least, or with hints)",
)
def _attention_guided(key, batch_size, layout, ratio, args):
    scores = layout.score("attention", "attention_guided")
    return attention_guided_mask(key, scores, ratio, **dataclasses.asdict(args))


def needed_scores(chosen: Chosen) -> tuple[str, ...]:
    """The `SCORES` names the chosen kind reads from `Layout.scores` (none for unguided kinds)."""
    needs = chosen.part.fact("needs", ())
    return tuple(needs(chosen.args) if callable(needs) else needs)


def check_scores(chosen: Chosen, supplied: tuple[str, ...], method: str) -> None:
    """A `ConfigError` when the chosen kind reads a score map that `method` does not supply."""
    missing = [name for name in needed_scores(chosen) if name not in supplied]
    if missing:
        raise ConfigError(
            f"mask.kind={chosen.name!r} reads the {missing[0]!r} score map ({SCORES.get(missing[0], '?')}), "
            f"which method {method!r} does not supply; it supplies {supplied}"
        )


def mask_section(layout_kind: str, default: str, owned: tuple[str, ...] = (), **arg_overrides: dict):
    """The `mask` ConfigDict of a method whose tokens have `layout_kind`: `kind=default` plus each fitting kind's args.

    `owned` kinds take their arguments from the method's own knobs (no subsection).
    """
    return MASKS.section_config(default, layout_kind, owned, **arg_overrides)


def resolve_mask(section, layout_kind: str, default: str, owned: dict | None = None) -> Chosen:
    """The kind a `mask` section chooses (checked against `MASKS`); None (an older config) = `default`."""
    return MASKS.resolve(section, layout_kind, default, owned)


def draw_mask(
    chosen: Chosen, key: jax.Array, batch_size: int, layout: Layout, ratio: float, *, fixed_count: bool = False
) -> Mask:
    """Draw the chosen kind; `fixed_count` adapts a variable count to `int(N * (1 - ratio))` visible tokens.

    A kind that already returns that count with `ids_keep` (e.g. `random`), or one
    registered with `own_count=True` (`tube`: `T * (H W - int(ratio H W))` visible, the
    paper's count; `frame`, `running_cell`: whole frames, whole cell patterns), is returned
    as drawn, so its masks are exactly the generator's for the same key. The top-up / trim
    uses `fold_in(key, 1)`. Kinds that mask by position read `layout.centers` (points).
    """
    if layout.kind not in chosen.part.fits:
        raise ConfigError(f"mask.kind={chosen.name!r} does not fit a {layout.kind} layout; it fits {chosen.part.fits}")
    mask = chosen.part.fn(key, batch_size, layout, ratio, chosen.args)
    if not fixed_count:
        return mask
    visible = num_visible_tokens(layout.num_tokens, ratio)
    if mask.ids_keep is not None and (mask.ids_keep.shape[1] == visible or chosen.part.fact("own_count")):
        return mask
    return fixed_count_mask(jax.random.fold_in(key, 1), mask.mask, visible)


# What `mmjax.masking` exports that is not a mask generator a config could choose, and why.
UTILITIES: dict[str, str] = {
    "apply_frequency_mask": "applies a FrequencyMask to images; the mask itself is frequency_mask",
    "farthest_point_sampling": "point-cloud grouping (Point-MAE's centers), not a mask",
    "gather_tokens": "token bookkeeping: gathers tokens by index, not a mask",
    "group_points": "point-cloud grouping into patches, not a mask",
    "image_from_spectrum": "Fourier transform helper for frequency masks",
    "image_spectrum": "Fourier transform helper for frequency masks",
    "inverse_permutation": "index bookkeeping for ids_restore",
    "knn_groups": "point-cloud grouping (k nearest neighbours), not a mask",
    "mask_as_blocks": "bookkeeping: a fixed-count Mask as I-JEPA's context and one target set (grid JEPA)",
    "tube_blocks": "lifts multiblock_masks over time (V-JEPA); multiblock masks are the JEPA method's own, not a kind",
    "mask_from_ranking": "building block: scores -> fixed-count Mask (random, guided and the adapter use it)",
    "maskgit_schedule": "MaskGIT's ratio schedule gamma(t), a number, not a mask",
    "mlm_candidates": "which text tokens may be masked (special tokens excluded), input to text masks",
    "num_visible_tokens": "the count int(N * (1 - ratio)), arithmetic",
    "observed_cells": "which table cells are observed, input to ReMasker's masks",
    "plot_masks": "a picture of masks",
    "ramp": "a schedule value over training steps (for curricula), a number",
    "random_mask_from_noise": "the `random` kind from given noise (HF parity, reproducing a mask)",
    "replace_with_mask_token": "token bookkeeping: puts the mask token where tokens are hidden",
    "restore_with_mask_tokens": "token bookkeeping: MAE's decoder unshuffle with mask tokens",
    "sample_mask_ratio": "draws per-example ratios (MaskGIT), input to ratio_mask",
    "select_lowest": "building block: per-example lowest-score selection",
    "truncated_geometric_logits": "span-length distribution for span_mask, numbers",
    "with_indices": "building block: adds ids_keep / ids_restore to a fixed-count boolean mask",
    "fixed_count_mask": "the sparse-encoder adapter draw_mask applies to variable-count kinds",
    "draw_mask": "the registry's entry point: draws a chosen kind",
}

__all__ = [
    "LAYOUTS",
    "MASKS",
    "UTILITIES",
    "BlockwiseArgs",
    "CellsArgs",
    "CurriculumArgs",
    "RegionArgs",
    "PriorGuidedArgs",
    "HardPatchArgs",
    "AttentionGuidedArgs",
    "SCORES",
    "Layout",
    "check_scores",
    "draw_mask",
    "needed_scores",
    "hidden_count",
    "mask_section",
    "resolve_mask",
]
