"""TPU lowering: block-sparse Pallas/Mosaic kernels driven by a prefetched schedule.

The design follows the idea of jax's splash attention: the tile walk is a grid axis,
and the index maps read the schedule from scalar memory (`PrefetchScalarGridSpec`)
to pick which key block (forward, dQ) or query block (dK/dV) to stream in. Grid step
`j` of query block `i` visits the `j`-th listed tile of row `i`; past the end of the
row the index maps repeat the last listed block, so the pipeline fetches nothing new
and the body is skipped. Fully visible tiles skip the mask work; partial ones apply it.
When the mask is known at trace time the grid only runs as far as the longest row.

Arrays are laid out `[B, H, L, D]` (transposed by the wrapper) so tiles are
`[block, D]` slabs; float32 accumulators live in VMEM scratch across grid steps.
The dK/dV kernel reads a transposed copy of the element-wise mask so that every tile
is computed key-major without transposing inside the kernel.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from mmjax.kernels import tiles
from mmjax.kernels.block_mask import HEADER
from mmjax.kernels.facts import KernelConfig, MaskFacts


def _pick(full: int, index):
    return index if full > 1 else 0


def _interpret(cfg: KernelConfig):
    return pltpu.InterpretParams() if cfg.interpret else False


def _compiler_params():
    return pltpu.CompilerParams(dimension_semantics=("parallel", "parallel", "parallel", "arbitrary"))


class _Walk:
    """Reads a schedule row (a prefetched SMEM ref) for grid point `(b, h, i, j)`."""

    def __init__(self, rows_shape):
        self.sb, self.sh = rows_shape[:2]

    def at(self, sched, b, h, i, col):
        return sched[_pick(self.sb, b), _pick(self.sh, h), i, col]

    def block(self, sched, b, h, i, j):
        return self.at(sched, b, h, i, HEADER + j)


def _allowed(r, lengths, q_start, k_start, shape, transpose: bool):
    """The partial-tile mask, `[bq, bk]` or key-major `[bk, bq]` when `transpose`."""
    allowed = None

    def both(x):
        return x if allowed is None else allowed & x

    if lengths is not None:
        k_pos = k_start + lax.broadcasted_iota(jnp.int32, shape, 0 if transpose else 1)
        allowed = both(k_pos < lengths)
    if "q_seg" in r:
        # Segment refs come shaped for broadcasting: a column `[n, 1]` and a row `[1, m]`.
        allowed = both(r["q_seg"][...] == r["kv_seg"][...])
    if "mask" in r:
        allowed = both(r["mask"][...] != 0)
    return allowed


def _kernel(*refs, names, cfg: KernelConfig, walk: _Walk, steps: int, kind: str, precision):
    """One kernel body for the three passes: `kind` is 'forward', 'dq' or 'dkv'."""
    r = dict(zip(names, refs, strict=True))
    b, h, i, j = (pl.program_id(a) for a in range(4))
    sched = r["sched"]
    lengths = r["lengths"][b] if "lengths" in r else None
    n_full, n_total = walk.at(sched, b, h, i, 0), walk.at(sched, b, h, i, 1)
    other = walk.block(sched, b, h, i, j)
    bq, bk = cfg.block_q, cfg.block_k
    if kind == "dkv":
        q_start, k_start, shape = other * bq, i * bk, (bk, bq)
    else:
        q_start, k_start, shape = i * bq, other * bk, (bq, bk)

    @pl.when(j == 0)
    def _init():
        for name in r:
            if name.startswith("acc_"):
                r[name][...] = jnp.zeros_like(r[name])
        if kind == "forward":
            r["acc_m"][...] = jnp.full_like(r["acc_m"], tiles.NEG_INF)

    def step(masked: bool):
        allowed = _allowed(r, lengths, q_start, k_start, shape, kind == "dkv") if masked else None
        if kind == "forward":
            carry = (r["acc_m"][...], r["acc_l"][...], r["acc_o"][...])
            m, row_sum, o = tiles.forward_tile(
                r["q"][...], r["k"][...], r["v"][...], allowed, carry, scale=cfg.scale, precision=precision
            )
            r["acc_m"][...], r["acc_l"][...], r["acc_o"][...] = m, row_sum, o
        elif kind == "dq":
            r["acc_dq"][...] += tiles.dq_tile(
                r["q"][...],
                r["k"][...],
                r["v"][...],
                r["do"][...],
                r["lse"][...],
                r["delta"][...],
                allowed,
                scale=cfg.scale,
                precision=precision,
            )
        else:
            dk, dv = tiles.dkv_tile(
                r["k"][...],
                r["v"][...],
                r["q"][...],
                r["do"][...],
                r["lse"][...],
                r["delta"][...],
                allowed,
                scale=cfg.scale,
                precision=precision,
            )
            r["acc_dk"][...] += dk
            r["acc_dv"][...] += dv

    pl.when(j < n_full)(lambda: step(False))
    pl.when((j >= n_full) & (j < n_total))(lambda: step(True))

    @pl.when(j == steps - 1)
    def _finish():
        if kind == "forward":
            out, lse = tiles.finish_forward((r["acc_m"][...], r["acc_l"][...], r["acc_o"][...]))
            r["o"][...] = out.astype(r["o"].dtype)
            r["lse_out"][...] = lse
        elif kind == "dq":
            r["dq"][...] = r["acc_dq"][...].astype(r["dq"].dtype)
        else:
            r["dk"][...] = r["acc_dk"][...].astype(r["dk"].dtype)
            r["dv"][...] = r["acc_dv"][...].astype(r["dv"].dtype)


def _call(kind, cfg: KernelConfig, facts: MaskFacts, rows, steps, tensors, outs, scratch, dtype):
    """Assemble the `pallas_call` for one pass over grid `(B, H, tiles, steps)`.

    `tensors` and `outs` are lists of `(name, array or ShapeDtypeStruct, block shape,
    tile_of)`, where `tile_of(b, h, i, other)` gives the block index from the grid's
    own tile `i` and the tile `other` that the schedule lists at step `j`.
    """
    walk = _Walk(rows.shape)
    scalars = [rows]
    names = ["sched"]
    if facts.key_lengths is not None:
        scalars.append(facts.key_lengths)
        names.append("lengths")
    n_scalar = len(scalars)

    def index_map(tile_of):
        def index(b, h, i, j, sched, *rest):
            del rest
            other = walk.block(sched, b, h, i, j)
            return tile_of(b, h, i, other)

        return index

    arrays, specs = [], []
    for name, array, block, tile_of in tensors:
        names.append(name)
        arrays.append(array)
        specs.append(pl.BlockSpec(block, index_map(tile_of)))
    out_specs = [pl.BlockSpec(block, index_map(tile_of)) for _, _, block, tile_of in outs]
    names += [name for name, *_ in outs]
    names += [name for name, _ in scratch]
    kernel = functools.partial(
        _kernel,
        names=names,
        cfg=cfg,
        walk=walk,
        steps=steps,
        kind=kind,
        precision=tiles.precision_for(dtype),
    )
    return pl.pallas_call(
        kernel,
        grid_spec=pltpu.PrefetchScalarGridSpec(
            num_scalar_prefetch=n_scalar,
            grid=(tensors[0][1].shape[0], tensors[0][1].shape[1], rows.shape[2], steps),
            in_specs=specs,
            out_specs=out_specs,
            scratch_shapes=[pltpu.VMEM(shape, jnp.float32) for _, shape in scratch],
        ),
        out_shape=[out for _, out, _, _ in outs],
        compiler_params=_compiler_params(),
        interpret=_interpret(cfg),
        name=f"mmjax_splash_{kind}",
    )(*scalars, *arrays)


def _mask_tensors(facts: MaskFacts, bq: int, bk: int, kv_major: bool):
    """Segment ids and element mask, shaped so tiles broadcast to `[bq, bk]` or `[bk, bq]`."""
    tensors = []
    if facts.q_segment_ids is not None:
        q_col, kv_row = facts.q_segment_ids[:, :, None], facts.kv_segment_ids[:, None, :]
        if kv_major:
            q_row, kv_col = facts.q_segment_ids[:, None, :], facts.kv_segment_ids[:, :, None]
            tensors += [
                ("q_seg", q_row, (None, 1, bq), lambda b, h, i, o: (b, 0, o)),
                ("kv_seg", kv_col, (None, bk, 1), lambda b, h, i, o: (b, i, 0)),
            ]
        else:
            tensors += [
                ("q_seg", q_col, (None, bq, 1), lambda b, h, i, o: (b, i, 0)),
                ("kv_seg", kv_row, (None, 1, bk), lambda b, h, i, o: (b, 0, o)),
            ]
    if facts.mask is not None:
        mb, mh = facts.mask.shape[:2]
        if kv_major:
            mask_t = jnp.swapaxes(facts.mask, 2, 3)
            tensors.append(
                ("mask", mask_t, (None, None, bk, bq), lambda b, h, i, o: (_pick(mb, b), _pick(mh, h), i, o))
            )
        else:
            tensors.append(
                (
                    "mask",
                    facts.mask,
                    (None, None, bq, bk),
                    lambda b, h, i, o: (_pick(mb, b), _pick(mh, h), i, o),
                )
            )
    return tensors


def _heads_major(x):
    return jnp.swapaxes(x, 1, 2)


def forward(cfg: KernelConfig, q: jax.Array, k: jax.Array, v: jax.Array, facts: MaskFacts):
    """`q [B, Lq, H, D]`, `k, v [B, Lk, H, D]` -> `(out [B, Lq, H, D], lse [B, H, Lq] float32)`."""
    b, lq, h, d = q.shape
    bq, bk = cfg.block_q, cfg.block_k
    own = (None, None, bq, d)
    other = (None, None, bk, d)
    tensors = [
        ("q", _heads_major(q), own, lambda b, h, i, o: (b, h, i, 0)),
        ("k", _heads_major(k), other, lambda b, h, i, o: (b, h, o, 0)),
        ("v", _heads_major(v), other, lambda b, h, i, o: (b, h, o, 0)),
        *_mask_tensors(facts, bq, bk, kv_major=False),
    ]
    outs = [
        ("o", jax.ShapeDtypeStruct((b, h, lq, d), q.dtype), own, lambda b, h, i, o: (b, h, i, 0)),
        (
            "lse_out",
            jax.ShapeDtypeStruct((b, h, lq, 1), jnp.float32),
            (None, None, bq, 1),
            lambda b, h, i, o: (b, h, i, 0),
        ),
    ]
    scratch = [("acc_m", (bq, 1)), ("acc_l", (bq, 1)), ("acc_o", (bq, d))]
    out, lse = _call("forward", cfg, facts, facts.schedule.forward, cfg.steps_forward, tensors, outs, scratch, q.dtype)
    return _heads_major(out), lse[..., 0]


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
    qh, kh, vh, doh = (_heads_major(x) for x in (q, k, v, do))

    own_q = (None, None, bq, d)
    tile_k = (None, None, bk, d)
    col = (None, None, bq, 1)
    tensors = [
        ("q", qh, own_q, lambda b, h, i, o: (b, h, i, 0)),
        ("k", kh, tile_k, lambda b, h, i, o: (b, h, o, 0)),
        ("v", vh, tile_k, lambda b, h, i, o: (b, h, o, 0)),
        ("do", doh, own_q, lambda b, h, i, o: (b, h, i, 0)),
        ("lse", lse[..., None], col, lambda b, h, i, o: (b, h, i, 0)),
        ("delta", delta[..., None], col, lambda b, h, i, o: (b, h, i, 0)),
        *_mask_tensors(facts, bq, bk, kv_major=False),
    ]
    outs = [("dq", jax.ShapeDtypeStruct(qh.shape, q.dtype), own_q, lambda b, h, i, o: (b, h, i, 0))]
    (dq,) = _call(
        "dq",
        cfg,
        facts,
        facts.schedule.forward,
        cfg.steps_forward,
        tensors,
        outs,
        [("acc_dq", (bq, d))],
        q.dtype,
    )

    row = (None, None, 1, bq)
    tensors = [
        ("k", kh, tile_k, lambda b, h, i, o: (b, h, i, 0)),
        ("v", vh, tile_k, lambda b, h, i, o: (b, h, i, 0)),
        ("q", qh, own_q, lambda b, h, i, o: (b, h, o, 0)),
        ("do", doh, own_q, lambda b, h, i, o: (b, h, o, 0)),
        ("lse", lse[:, :, None, :], row, lambda b, h, i, o: (b, h, 0, o)),
        ("delta", delta[:, :, None, :], row, lambda b, h, i, o: (b, h, 0, o)),
        *_mask_tensors(facts, bq, bk, kv_major=True),
    ]
    outs = [
        ("dk", jax.ShapeDtypeStruct((b, h, lk, d), k.dtype), tile_k, lambda b, h, i, o: (b, h, i, 0)),
        ("dv", jax.ShapeDtypeStruct((b, h, lk, d), v.dtype), tile_k, lambda b, h, i, o: (b, h, i, 0)),
    ]
    dk, dv = _call(
        "dkv",
        cfg,
        facts,
        facts.schedule.backward,
        cfg.steps_backward,
        tensors,
        outs,
        [("acc_dk", (bk, d)), ("acc_dv", (bk, d))],
        q.dtype,
    )
    return _heads_major(dq), _heads_major(dk), _heads_major(dv)
