"""Front end of the flash kernels: validation, padding, the block schedule and the custom VJP."""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

from mmjax.kernels import flash_gpu, flash_tpu
from mmjax.kernels.block_mask import block_states, make_schedule, max_steps
from mmjax.kernels.facts import KernelConfig, MaskFacts
from mmjax.kernels.reference import as_4d_mask

LOWERINGS = ("gpu", "tpu")
_MODULES = {"gpu": flash_gpu, "tpu": flash_tpu}


@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Tile sizes. Each is clipped to the (rounded-up) sequence length it tiles.

    GPU tiles are powers of two of at least 16 (Triton); TPU key tiles should be
    multiples of 128 and query tiles multiples of 8 on real hardware (any size works
    in interpret mode). `num_warps` and `num_stages` are Triton launch settings for the
    GPU lowering; None picks them from the head dim (4 warps up to 64, else 8; 2 stages).
    `backward` gives the backward kernels their own tiles and settings (None: the
    forward's).
    """

    block_q: int
    block_k: int
    num_warps: int | None = None
    num_stages: int | None = None
    backward: BlockSizes | None = None

    @classmethod
    def default(cls, lowering: str, head_dim: int | None = None, dtype=None) -> BlockSizes:
        """TPU: 512 x 512 (splash's default tile).

        GPU: 64 x 64, except bf16/fp16 with head dims above 64 (tuned on an H200, see
        benchmarks/RESULTS.md): forward 128 x 64 with 4 warps, backward 64 x 64 with 4
        warps, where the previous default (64 x 64 with 8 warps) ran 1.8x slower forward
        and 2x slower forward+backward.
        """
        if lowering == "tpu":
            return cls(512, 512)
        half = dtype is not None and jnp.dtype(dtype).itemsize == 2
        if half and head_dim is not None and head_dim > 64:
            return cls(128, 64, 4, 2, backward=cls(64, 64, 4, 2))
        return cls(64, 64)


def default_lowering(platform: str | None = None) -> str:
    """`'tpu'` on TPU, `'gpu'` everywhere else (GPU, and CPU in interpret mode)."""
    platform = platform or jax.default_backend()
    return "tpu" if platform == "tpu" else "gpu"


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def _tile(requested: int, length: int, lowering: str, align: int) -> int:
    if requested <= 0:
        raise ValueError(f"block sizes must be positive, got {requested}")
    if lowering == "gpu":
        return max(16, min(_pow2_at_least(requested), _pow2_at_least(length)))
    return min(requested, _round_up(length, align))


def flash_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    *,
    key_lengths: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    mask: jax.Array | None = None,
    scale: float | None = None,
    lowering: str | None = None,
    interpret: bool | None = None,
    block_sizes: BlockSizes | None = None,
) -> jax.Array:
    """Flash attention in Pallas with padding, segment and block-sparse masks.

    Args:
      q: `[B, Lq, H, Dh]`; k, v: `[B, Lk, H, Dh]` (float32, bfloat16 or float16; the
        softmax and all accumulation are float32).
      key_lengths: int `[B]`; keys at or past the length are ignored (0 is allowed).
      q_segment_ids, kv_segment_ids: int `[B, Lq]`, `[B, Lk]`; attend within a segment.
      mask: bool `[Lq, Lk]`, `[B, Lq, Lk]` or `[B or 1, H or 1, Lq, Lk]`, True = may
        attend. Tiles it leaves empty are skipped; tiles it fills need no mask work.
      scale: logit scale, default `Dh ** -0.5`.
      lowering: `'gpu'` (Triton-style) or `'tpu'` (Mosaic, block-sparse); default by platform.
      interpret: run in Pallas interpret mode; default: when the platform does not
        match the lowering (e.g. on CPU).
      block_sizes: tile sizes, default `BlockSizes.default(lowering)`.

    Returns:
      `[B, Lq, H, Dh]` in `q.dtype`. Rows with no allowed key are zeros, and their
      gradients are zeros (never NaN). Lengths need not be multiples of the tiles:
      inputs are padded here and the padding is masked out.
    """
    if q.ndim != 4 or k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[2:] != k.shape[2:]:
        raise ValueError(
            f"flash_attention expects q [B, Lq, H, Dh], k and v [B, Lk, H, Dh]; got {q.shape}, {k.shape}, {v.shape}"
        )
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share a dtype; got {q.dtype}, {k.dtype}, {v.dtype}")
    if (q_segment_ids is None) != (kv_segment_ids is None):
        raise ValueError("q_segment_ids and kv_segment_ids must be given together")
    platform = jax.default_backend()
    lowering = lowering or default_lowering(platform)
    if lowering not in LOWERINGS:
        raise ValueError(f"flash_attention lowering must be one of {LOWERINGS}, got {lowering!r}")
    if interpret is None:
        interpret = platform != lowering
    batch, q_len, heads, head_dim = q.shape
    kv_len = k.shape[1]
    scale = head_dim**-0.5 if scale is None else float(scale)
    sizes = block_sizes or BlockSizes.default(lowering, head_dim, q.dtype)
    back = sizes.backward or sizes
    for where, tiles in (("block_sizes", sizes), ("block_sizes.backward", back)):
        if tiles.num_warps is not None and tiles.num_warps not in (1, 2, 4, 8, 16):
            raise ValueError(f"{where}.num_warps={tiles.num_warps}: expected one of 1, 2, 4, 8, 16")
        if tiles.num_stages is not None and tiles.num_stages < 1:
            raise ValueError(f"{where}.num_stages={tiles.num_stages}: expected a positive count")
    bq = _tile(sizes.block_q, q_len, lowering, 8)
    bk = _tile(sizes.block_k, kv_len, lowering, 128)
    bq_back = _tile(back.block_q, q_len, lowering, 8)
    bk_back = _tile(back.block_k, kv_len, lowering, 128)
    lq, lk = _round_up(q_len, math.lcm(bq, bq_back)), _round_up(kv_len, math.lcm(bk, bk_back))
    dp = max(16, _pow2_at_least(head_dim)) if lowering == "gpu" else head_dim

    # Padding: queries and keys to whole tiles, the head dim to what the lowering needs.
    def pad(x, length):
        return jnp.pad(x, ((0, 0), (0, length - x.shape[1]), (0, 0), (0, dp - head_dim)))

    qp, kp, vp = pad(q, lq), pad(k, lk), pad(v, lk)
    if key_lengths is not None:
        key_lengths = jnp.clip(jnp.asarray(key_lengths, jnp.int32).reshape(batch), 0, kv_len)
    elif lk != kv_len:
        key_lengths = jnp.full((batch,), kv_len, jnp.int32)
    if q_segment_ids is not None:
        q_segment_ids = jnp.pad(jnp.asarray(q_segment_ids, jnp.int32), ((0, 0), (0, lq - q_len)), mode="edge")
        kv_segment_ids = jnp.pad(jnp.asarray(kv_segment_ids, jnp.int32), ((0, 0), (0, lk - kv_len)), mode="edge")
    if mask is not None:
        mask = as_4d_mask(mask)
        if (
            mask.shape[0] not in (1, batch)
            or mask.shape[1] not in (1, heads)
            or mask.shape[2:]
            != (
                q_len,
                kv_len,
            )
        ):
            raise ValueError(
                f"mask shape {mask.shape} does not fit [B or 1, H or 1, Lq, Lk] = [{batch}, {heads}, {q_len}, {kv_len}]"
            )
        mask = jnp.pad(mask, ((0, 0), (0, 0), (0, lq - q_len), (0, lk - kv_len))).astype(jnp.int8)

    def config_for(tiles: BlockSizes, block_q: int, block_k: int):
        states = block_states(
            lq,
            lk,
            block_q,
            block_k,
            key_lengths=key_lengths,
            q_segment_ids=q_segment_ids,
            kv_segment_ids=kv_segment_ids,
            mask=mask,
        )
        schedule = make_schedule(states)
        cfg = KernelConfig(
            block_q=block_q,
            block_k=block_k,
            scale=scale,
            interpret=bool(interpret),
            steps_forward=max_steps(schedule.forward) or lk // block_k,
            steps_backward=max_steps(schedule.backward) or lq // block_q,
            num_warps=tiles.num_warps or (4 if dp <= 64 else 8),
            num_stages=tiles.num_stages or 2,
            dense=key_lengths is None and q_segment_ids is None and mask is None,
        )
        return cfg, schedule

    cfg, schedule = config_for(sizes, bq, bk)
    backward_schedule = None
    if sizes.backward is not None:
        back_cfg, backward_schedule = config_for(back, bq_back, bk_back)
        cfg = dataclasses.replace(cfg, backward=back_cfg)
    facts = MaskFacts(schedule, key_lengths, q_segment_ids, kv_segment_ids, mask, backward_schedule)
    out = _flash(lowering, cfg, qp, kp, vp, facts)
    return out[:, :q_len, :, :head_dim]


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _flash(lowering: str, cfg: KernelConfig, q, k, v, facts: MaskFacts):
    out, _ = _MODULES[lowering].forward(cfg, q, k, v, facts)
    return out


def _flash_fwd(lowering, cfg, q, k, v, facts):
    out, lse = _MODULES[lowering].forward(cfg, q, k, v, facts)
    return out, (q, k, v, facts, out, lse)


def _flash_bwd(lowering, cfg, residuals, do):
    q, k, v, facts, out, lse = residuals
    if cfg.backward is not None:
        cfg, facts = cfg.backward, dataclasses.replace(facts, schedule=facts.backward_schedule)
    delta = jnp.einsum("bqhd,bqhd->bhq", out.astype(jnp.float32), do.astype(jnp.float32))
    dq, dk, dv = _MODULES[lowering].backward(cfg, q, k, v, facts, lse, do.astype(q.dtype), delta)
    return dq, dk, dv, jax.tree.map(lambda _: None, facts)


_flash.defvjp(_flash_fwd, _flash_bwd)
