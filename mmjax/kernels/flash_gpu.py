"""GPU lowering: Triton-style Pallas kernels (one program per query or key tile).

Forward and dQ: grid `(nq, B, H)`. Each program keeps its query tile in registers and
loops over the key tiles its schedule row lists: first the fully visible ones with no
mask work at all, then the partial ones with the element-wise mask. Empty tiles are
never loaded. Without any mask fact (`KernelConfig.dense`) the loop runs over every
key tile by count, without reading the schedule. K and V of the `(b, h)` pair are
addressed whole and sliced per tile.

dK/dV: grid `(nk, B, H)`, the mirror image over the transposed schedule.

Arrays stay `[B, L, H, D]`; the head dim is a power of two of at least 16 (the front
end pads it). On CPU the same kernels run with `interpret=True`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from mmjax.kernels import tiles
from mmjax.kernels.block_mask import HEADER
from mmjax.kernels.facts import KernelConfig, MaskFacts


def _named(names, refs):
    return dict(zip(names, refs, strict=True))


def _pick(full: int, index):
    """Index into a dimension that is either full-size or broadcast (size 1)."""
    return index if full > 1 else 0


def _tile_allowed(r, q_start, k_start, bq: int, bk: int, transpose: bool):
    """bool `[bq, bk]` (or `[bk, bq]` when `transpose`) for a partial tile, from the refs present."""
    allowed = None

    def both(x):
        return x if allowed is None else allowed & x

    k_pos = k_start + jnp.arange(bk)
    if "lengths" in r:
        length = r["lengths"][...]
        allowed = both(k_pos[:, None] < length if transpose else k_pos[None, :] < length)
    if "q_seg" in r:
        qs = r["q_seg"][pl.ds(q_start, bq)] if transpose else r["q_seg"][...]
        ks = r["kv_seg"][...] if transpose else r["kv_seg"][pl.ds(k_start, bk)]
        allowed = both(ks[:, None] == qs[None, :] if transpose else qs[:, None] == ks[None, :])
    if "mask" in r:
        if transpose:
            # Transpose the int8 tile, not a boolean one (i1 tensors are awkward in Triton).
            allowed = both(r["mask"][pl.ds(q_start, bq), :].T != 0)
        else:
            allowed = both(r["mask"][:, pl.ds(k_start, bk)] != 0)
    return allowed


def _mask_inputs(cfg: KernelConfig, facts: MaskFacts, *, kv_major: bool, lq: int, lk: int):
    """Specs for the optional mask facts, for a grid `(i, b, h)` over q tiles or k tiles."""
    bq, bk = cfg.block_q, cfg.block_k
    names, arrays, specs = [], [], []
    if facts.key_lengths is not None:
        names.append("lengths")
        arrays.append(facts.key_lengths)
        specs.append(pl.BlockSpec((None,), lambda i, b, h: (b,)))
    if facts.q_segment_ids is not None:
        names += ["q_seg", "kv_seg"]
        arrays += [facts.q_segment_ids, facts.kv_segment_ids]
        if kv_major:
            specs += [
                pl.BlockSpec((None, lq), lambda i, b, h: (b, 0)),
                pl.BlockSpec((None, bk), lambda i, b, h: (b, i)),
            ]
        else:
            specs += [
                pl.BlockSpec((None, bq), lambda i, b, h: (b, i)),
                pl.BlockSpec((None, lk), lambda i, b, h: (b, 0)),
            ]
    if facts.mask is not None:
        mb, mh = facts.mask.shape[:2]
        names.append("mask")
        arrays.append(facts.mask)
        if kv_major:
            specs.append(pl.BlockSpec((None, None, lq, bk), lambda i, b, h: (_pick(mb, b), _pick(mh, h), 0, i)))
        else:
            specs.append(pl.BlockSpec((None, None, bq, lk), lambda i, b, h: (_pick(mb, b), _pick(mh, h), i, 0)))
    return names, arrays, specs


def _schedule_spec(rows: jax.Array) -> pl.BlockSpec:
    sb, sh, _, width = rows.shape
    return pl.BlockSpec((None, None, None, width), lambda i, b, h: (_pick(sb, b), _pick(sh, h), i, 0))


def _visit(sched_ref, body, carry, cfg: KernelConfig, n_blocks: int):
    """Run `body(block, masked, carry)` over a schedule row: full tiles, then partial ones.

    With `cfg.dense` every one of the `n_blocks` tiles is full and the schedule is not read.
    """
    if cfg.dense:
        return lax.fori_loop(0, n_blocks, lambda j, c: body(j, False, c), carry)
    n_full, n_total = sched_ref[0], sched_ref[1]

    def step(masked):
        return lambda j, c: body(sched_ref[HEADER + j], masked, c)

    carry = lax.fori_loop(0, n_full, step(False), carry)
    return lax.fori_loop(n_full, n_total, step(True), carry)


def _forward_kernel(*refs, names, cfg: KernelConfig, precision):
    r = _named(names, refs)
    bq, bk = cfg.block_q, cfg.block_k
    q = r["q"][...]
    q_start = pl.program_id(0) * bq

    def body(block, masked, carry):
        k_start = block * bk
        k = r["k"][pl.ds(k_start, bk), :]
        v = r["v"][pl.ds(k_start, bk), :]
        allowed = _tile_allowed(r, q_start, k_start, bq, bk, False) if masked else None
        return tiles.forward_tile(q, k, v, allowed, carry, scale=cfg.scale, precision=precision)

    init = (
        jnp.full((bq, 1), tiles.NEG_INF, jnp.float32),
        jnp.zeros((bq, 1), jnp.float32),
        jnp.zeros((bq, q.shape[-1]), jnp.float32),
    )
    out, lse = tiles.finish_forward(_visit(r["sched"], body, init, cfg, r["k"].shape[0] // bk))
    r["o"][...] = out.astype(r["o"].dtype)
    r["lse"][...] = lse[:, 0]


def _dq_kernel(*refs, names, cfg: KernelConfig, precision):
    r = _named(names, refs)
    bq, bk = cfg.block_q, cfg.block_k
    q, do = r["q"][...], r["do"][...]
    lse, delta = r["lse"][...][:, None], r["delta"][...][:, None]
    q_start = pl.program_id(0) * bq

    def body(block, masked, dq):
        k_start = block * bk
        k = r["k"][pl.ds(k_start, bk), :]
        v = r["v"][pl.ds(k_start, bk), :]
        allowed = _tile_allowed(r, q_start, k_start, bq, bk, False) if masked else None
        return dq + tiles.dq_tile(q, k, v, do, lse, delta, allowed, scale=cfg.scale, precision=precision)

    dq = _visit(r["sched"], body, jnp.zeros(q.shape, jnp.float32), cfg, r["k"].shape[0] // bk)
    r["dq"][...] = dq.astype(r["dq"].dtype)


def _dkv_kernel(*refs, names, cfg: KernelConfig, precision):
    r = _named(names, refs)
    bq, bk = cfg.block_q, cfg.block_k
    k, v = r["k"][...], r["v"][...]
    k_start = pl.program_id(0) * bk

    def body(block, masked, carry):
        q_start = block * bq
        q = r["q"][pl.ds(q_start, bq), :]
        do = r["do"][pl.ds(q_start, bq), :]
        lse = r["lse"][pl.ds(q_start, bq)][None, :]
        delta = r["delta"][pl.ds(q_start, bq)][None, :]
        allowed = _tile_allowed(r, q_start, k_start, bq, bk, True) if masked else None
        dk, dv = tiles.dkv_tile(k, v, q, do, lse, delta, allowed, scale=cfg.scale, precision=precision)
        return carry[0] + dk, carry[1] + dv

    zeros = jnp.zeros(k.shape, jnp.float32)
    dk, dv = _visit(r["sched"], body, (zeros, zeros), cfg, r["q"].shape[0] // bq)
    r["dk"][...] = dk.astype(r["dk"].dtype)
    r["dv"][...] = dv.astype(r["dv"].dtype)


def _compiler_params(cfg: KernelConfig):
    return plgpu.CompilerParams(num_warps=cfg.num_warps, num_stages=cfg.num_stages)


def forward(cfg: KernelConfig, q: jax.Array, k: jax.Array, v: jax.Array, facts: MaskFacts):
    """`q [B, Lq, H, D]`, `k, v [B, Lk, H, D]` -> `(out [B, Lq, H, D], lse [B, H, Lq] float32)`."""
    b, lq, h, d = q.shape
    lk = k.shape[1]
    bq = cfg.block_q
    q_tile = pl.BlockSpec((None, bq, None, d), lambda i, b, h: (b, i, h, 0))
    kv_whole = pl.BlockSpec((None, lk, None, d), lambda i, b, h: (b, 0, h, 0))
    names, arrays, specs = _mask_inputs(cfg, facts, kv_major=False, lq=lq, lk=lk)
    names = ["sched", "q", "k", "v", *names, "o", "lse"]
    kernel = functools.partial(_forward_kernel, names=names, cfg=cfg, precision=tiles.precision_for(q.dtype))
    return pl.pallas_call(
        kernel,
        grid=(lq // bq, b, h),
        in_specs=[_schedule_spec(facts.schedule.forward), q_tile, kv_whole, kv_whole, *specs],
        out_specs=[q_tile, pl.BlockSpec((None, None, bq), lambda i, b, h: (b, h, i))],
        out_shape=[
            jax.ShapeDtypeStruct(q.shape, q.dtype),
            jax.ShapeDtypeStruct((b, h, lq), jnp.float32),
        ],
        compiler_params=_compiler_params(cfg),
        interpret=cfg.interpret,
        name="mmjax_flash_forward",
    )(facts.schedule.forward, q, k, v, *arrays)


def backward(
    cfg: KernelConfig,
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    facts: MaskFacts,
    lse: jax.Array,
    do: jax.Array,
    delta: jax.Array,
):
    """Gradients `(dq, dk, dv)` shaped like `q, k, v`; `lse`, `delta` are float32 `[B, H, Lq]`."""
    b, lq, h, d = q.shape
    lk = k.shape[1]
    bq, bk = cfg.block_q, cfg.block_k
    precision = tiles.precision_for(q.dtype)
    params = _compiler_params(cfg)

    q_tile = pl.BlockSpec((None, bq, None, d), lambda i, b, h: (b, i, h, 0))
    row_tile = pl.BlockSpec((None, None, bq), lambda i, b, h: (b, h, i))
    kv_whole = pl.BlockSpec((None, lk, None, d), lambda i, b, h: (b, 0, h, 0))
    names, arrays, specs = _mask_inputs(cfg, facts, kv_major=False, lq=lq, lk=lk)
    names = ["sched", "q", "k", "v", "do", "lse", "delta", *names, "dq"]
    dq = pl.pallas_call(
        functools.partial(_dq_kernel, names=names, cfg=cfg, precision=precision),
        grid=(lq // bq, b, h),
        in_specs=[
            _schedule_spec(facts.schedule.forward),
            q_tile,
            kv_whole,
            kv_whole,
            q_tile,
            row_tile,
            row_tile,
            *specs,
        ],
        out_specs=q_tile,
        out_shape=jax.ShapeDtypeStruct(q.shape, q.dtype),
        compiler_params=params,
        interpret=cfg.interpret,
        name="mmjax_flash_dq",
    )(facts.schedule.forward, q, k, v, do, lse, delta, *arrays)

    k_tile = pl.BlockSpec((None, bk, None, d), lambda i, b, h: (b, i, h, 0))
    q_whole = pl.BlockSpec((None, lq, None, d), lambda i, b, h: (b, 0, h, 0))
    row_whole = pl.BlockSpec((None, None, lq), lambda i, b, h: (b, h, 0))
    names, arrays, specs = _mask_inputs(cfg, facts, kv_major=True, lq=lq, lk=lk)
    names = ["sched", "k", "v", "q", "do", "lse", "delta", *names, "dk", "dv"]
    dk, dv = pl.pallas_call(
        functools.partial(_dkv_kernel, names=names, cfg=cfg, precision=precision),
        grid=(lk // bk, b, h),
        in_specs=[
            _schedule_spec(facts.schedule.backward),
            k_tile,
            k_tile,
            q_whole,
            q_whole,
            row_whole,
            row_whole,
            *specs,
        ],
        out_specs=[k_tile, k_tile],
        out_shape=[jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype)],
        compiler_params=params,
        interpret=cfg.interpret,
        name="mmjax_flash_dkv",
    )(facts.schedule.backward, k, v, q, do, lse, delta, *arrays)
    return dq, dk, dv
