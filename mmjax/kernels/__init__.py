"""Pallas flash-attention kernels for masked attention, and their pure-jnp reference.

`flash_attention(q, k, v, *, key_lengths, q_segment_ids, kv_segment_ids, mask, scale,
lowering, interpret, block_sizes)` runs a forward and a custom-VJP backward in Pallas:
`lowering='gpu'` (Triton-style, `flash_gpu.py`) or `'tpu'` (block-sparse Mosaic in the
manner of splash attention, `flash_tpu.py`); on CPU both run in interpret mode.
`reference_attention` is the same function written densely in `jnp`. Models do not
call these directly: they go through `mmjax.ops.attention(..., impl='pallas')`.
"""

from mmjax.kernels.block_mask import (
    EMPTY,
    FULL,
    PARTIAL,
    BlockSchedule,
    block_causal_mask,
    block_states,
    expand_block_pattern,
    make_schedule,
)
from mmjax.kernels.flash import LOWERINGS, BlockSizes, default_lowering, flash_attention
from mmjax.kernels.reference import reference_attention

__all__ = [
    "EMPTY",
    "FULL",
    "LOWERINGS",
    "PARTIAL",
    "BlockSchedule",
    "BlockSizes",
    "block_causal_mask",
    "block_states",
    "default_lowering",
    "expand_block_pattern",
    "flash_attention",
    "make_schedule",
    "reference_attention",
]
