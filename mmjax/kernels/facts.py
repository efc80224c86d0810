"""What the front end (`flash.py`) hands to a lowering (`flash_gpu.py`, `flash_tpu.py`)."""

from __future__ import annotations

import dataclasses

import jax

from mmjax.kernels.block_mask import BlockSchedule


@dataclasses.dataclass(frozen=True)
class KernelConfig:
    """Static settings of one kernel call (hashable: it is a `custom_vjp` non-diff argument).

    Attributes:
      block_q, block_k: tile sizes; the sequence lengths are multiples of them.
      scale: softmax scale applied to `q.k`.
      interpret: run the kernel in Pallas interpret mode (on CPU).
      steps_forward, steps_backward: grid extent along the visited tiles on TPU: the
        largest schedule row when the schedule is known at trace time, else the
        number of blocks.
      num_warps, num_stages: Triton launch settings (GPU lowering only).
      backward: the backward kernels' own settings, or None to use these.
      dense: no mask facts at all, so every tile is full: the GPU kernels loop over the
        tiles by count and address them by arithmetic instead of reading the schedule
        (a loop Triton can software-pipeline).
    """

    block_q: int
    block_k: int
    scale: float
    interpret: bool
    steps_forward: int
    steps_backward: int
    num_warps: int = 4
    num_stages: int = 2
    backward: KernelConfig | None = None
    dense: bool = False


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MaskFacts:
    """Padded mask facts, shapes at the padded lengths `Lq`, `Lk`.

    Attributes:
      schedule: which tiles to visit (see `block_mask.BlockSchedule`).
      key_lengths: int32 `[B]` or None.
      q_segment_ids, kv_segment_ids: int32 `[B, Lq]`, `[B, Lk]` or None.
      mask: int8 `[Bm, Hm, Lq, Lk]` (nonzero = may attend) or None.
      backward_schedule: the tiles the backward kernels visit when their tile sizes
        differ from the forward's (`KernelConfig.backward`), else None.
    """

    schedule: BlockSchedule
    key_lengths: jax.Array | None = None
    q_segment_ids: jax.Array | None = None
    kv_segment_ids: jax.Array | None = None
    mask: jax.Array | None = None
    backward_schedule: BlockSchedule | None = None
