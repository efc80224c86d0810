"""Mask generators: pure functions of a PRNG key, static shapes, `jit`/`vmap` safe.

Every generator returns the `Mask` pytree (`mask` bool `[B, N]`, True = hidden; plus
`ids_keep` / `ids_restore` when the hidden count is fixed) or a small documented
pytree where a method needs more (I-JEPA, MLM corruption, ReMasker, 4M).
See docs/masks.md for a picture of each.

`MASKS` (`mmjax.masking.registry`) names the generators a config's `mask.kind` chooses,
with the token layouts each fits; `draw_mask` draws one, adapting variable counts to a
fixed one for sparse encoders (`fixed_count_mask`).
"""

from mmjax.masking.blockwise import blockwise_mask
from mmjax.masking.dense import fixed_count_mask, select_lowest, simmim_mask, with_indices
from mmjax.masking.guided import (
    attention_guided_mask,
    hard_patch_mask,
    mixed_guided_mask,
    prior_guided_mask,
)
from mmjax.masking.mask import (
    Mask,
    inverse_permutation,
    mask_from_ranking,
    num_visible_tokens,
    random_mask,
    random_mask_from_noise,
)
from mmjax.masking.multiblock import MultiBlockMasks, mask_as_blocks, multiblock_masks, tube_blocks
from mmjax.masking.multimodal import MultimodalMasks, disjoint_view_masks, multimodal_budget_masks
from mmjax.masking.plot import plot_masks
from mmjax.masking.points import (
    PointPatches,
    farthest_point_sampling,
    group_points,
    knn_groups,
    region_mask,
)
from mmjax.masking.registry import MASKS, Layout, draw_mask
from mmjax.masking.schedules import (
    MASKGIT_SCHEDULES,
    curriculum_mask,
    maskgit_schedule,
    ramp,
    ratio_mask,
    sample_mask_ratio,
    time_frequency_curriculum_mask,
    truncated_normal_ratio,
)
from mmjax.masking.signals import (
    FrequencyMask,
    apply_frequency_mask,
    frequency_mask,
    image_from_spectrum,
    image_spectrum,
    spec_band_mask,
    time_frequency_mask,
    variate_patch_mask,
)
from mmjax.masking.tables import RemaskerMasks, observed_cells, remasker_masks
from mmjax.masking.text import (
    MLMCorruption,
    bert_corruption,
    bert_mask,
    frequency_weighted_mask,
    mlm_candidates,
    ngram_mask,
    span_mask,
    truncated_geometric_logits,
)
from mmjax.masking.tokens import gather_tokens, replace_with_mask_token, restore_with_mask_tokens
from mmjax.masking.video import frame_mask, running_cell_mask, spacetime_mask, tube_mask

__all__ = [
    "MASKGIT_SCHEDULES",
    "MASKS",
    "FrequencyMask",
    "Layout",
    "MLMCorruption",
    "Mask",
    "MultiBlockMasks",
    "MultimodalMasks",
    "PointPatches",
    "RemaskerMasks",
    "apply_frequency_mask",
    "attention_guided_mask",
    "bert_corruption",
    "bert_mask",
    "blockwise_mask",
    "curriculum_mask",
    "disjoint_view_masks",
    "draw_mask",
    "farthest_point_sampling",
    "fixed_count_mask",
    "frame_mask",
    "frequency_mask",
    "frequency_weighted_mask",
    "gather_tokens",
    "group_points",
    "hard_patch_mask",
    "image_from_spectrum",
    "image_spectrum",
    "knn_groups",
    "inverse_permutation",
    "mask_as_blocks",
    "mask_from_ranking",
    "maskgit_schedule",
    "mixed_guided_mask",
    "mlm_candidates",
    "multiblock_masks",
    "multimodal_budget_masks",
    "ngram_mask",
    "num_visible_tokens",
    "observed_cells",
    "plot_masks",
    "prior_guided_mask",
    "ramp",
    "random_mask",
    "random_mask_from_noise",
    "ratio_mask",
    "region_mask",
    "remasker_masks",
    "replace_with_mask_token",
    "restore_with_mask_tokens",
    "running_cell_mask",
    "sample_mask_ratio",
    "truncated_normal_ratio",
    "select_lowest",
    "simmim_mask",
    "spacetime_mask",
    "span_mask",
    "spec_band_mask",
    "time_frequency_curriculum_mask",
    "time_frequency_mask",
    "truncated_geometric_logits",
    "tube_blocks",
    "tube_mask",
    "variate_patch_mask",
    "with_indices",
]
