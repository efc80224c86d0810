"""Attention speed: pallas vs cudnn vs xla, forward and forward+backward, with masks.

For each head dim, sequence length and mask, every implementation runs on the same
bf16 inputs (batch * length = 16k tokens, 2048 model width) and the table gives the
time and the TFLOP/s, counted two ways: `useful` counts only the query-key pairs the
mask allows, `dense` counts the whole `L x L` product (what a dense kernel does).
Forward FLOPs are `4 * B * H * Lq * Lk * Dh`; forward+backward is 3.5x that
(the backward does 2.5x the forward's matrix work).

Masks: `dense` (no mask); `ones` (an explicit all-True mask: the same work as dense,
through the masked code path); `padN` (N% of the keys valid per example,
`key_lengths`); `blockcausal` (8 frames, each sees itself and the earlier frames: about
56% of the pairs); `halfblocks` (two diagonal blocks: each query sees the half of the
keys in its block, so half of the tiles are empty and the rest are full). The last two
are block-sparse masks that the pallas kernel skips tile by tile.

`--tune` first times a few Triton tile settings of the pallas kernel (tiles, warps,
stages) on dense attention at `--tune-length` and runs the sweep with the fastest
forward setting per head dim (among those whose backward also compiles).

    python benchmarks/attention.py              # GPU: the full sweep; CPU: --small
    python benchmarks/attention.py --small      # a smoke run (interpret mode on CPU)
    python benchmarks/attention.py --out attention.txt --budget-s 150
    python benchmarks/attention.py --tune --json attention.jsonl   # GPU: tune, then sweep

On CPU, pallas runs in interpret mode and cudnn is reported as unavailable: the
numbers only show that the script works.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from mmjax.kernels import BlockSizes, block_causal_mask, flash_attention  # noqa: E402
from mmjax.ops.attention import attention  # noqa: E402

IMPLS = ("pallas", "cudnn", "xla")
MASKS = ("dense", "ones", "pad75", "pad50", "pad25", "blockcausal", "halfblocks")
# Triton settings tried by --tune: (block_q, block_k, num_warps, num_stages).
TUNE_CONFIGS = (
    (64, 64, 4, 2),
    (128, 64, 4, 2),
    (128, 64, 4, 3),
    (128, 128, 8, 2),
    (128, 128, 8, 3),
    (64, 32, 4, 3),
)


@dataclasses.dataclass
class Case:
    head_dim: int
    length: int
    batch: int
    heads: int
    mask: str

    def facts(self) -> tuple[dict, float]:
        """Mask arguments for `attention` and the fraction of query-key pairs allowed."""
        if self.mask == "dense":
            return {}, 1.0
        if self.mask == "ones":
            return {"mask": jnp.ones((1, self.length, self.length), bool)}, 1.0
        if self.mask == "halfblocks":
            block = np.arange(self.length) * 2 // self.length
            mask = block[:, None] == block[None, :]
            return {"mask": jnp.asarray(mask)[None]}, float(mask.mean())
        if self.mask.startswith("pad"):
            frac = int(self.mask[3:]) / 100
            valid = max(1, int(self.length * frac))
            return {"key_lengths": jnp.full((self.batch,), valid, jnp.int32)}, valid / self.length
        if self.mask == "blockcausal":
            mask = block_causal_mask(self.length, self.length, max(1, self.length // 8))
            return {"mask": jnp.asarray(mask)[None]}, float(mask.mean())
        raise ValueError(f"unknown mask {self.mask!r}; choose from {MASKS}")

    def flops(self) -> float:
        return 4.0 * self.batch * self.heads * self.length * self.length * self.head_dim


def time_call(fn, args, reps: int, rounds: int = 3) -> float:
    """Seconds per call: `reps` calls queued back to back, timed to the last result.

    One warm-up call compiles; the best of `rounds` rounds is kept. Queuing hides the
    host's dispatch cost, so short kernels are timed by the device, not by Python.
    """
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - start) / reps)
    return best


def attention_fn(impl: str, tiles: BlockSizes | None):
    """`(q, k, v, **facts) -> out` for one implementation; `tiles` sets the pallas kernel's."""
    if impl == "pallas" and tiles is not None:
        return lambda q, k, v, **facts: flash_attention(q, k, v, block_sizes=tiles, **facts)
    return lambda q, k, v, **facts: attention(q, k, v, impl=impl, **facts)


def run_case(case: Case, impl: str, reps: int, tiles: BlockSizes | None = None) -> dict:
    facts, allowed = case.facts()
    ks = jax.random.split(jax.random.key(0), 4)
    shape = (case.batch, case.length, case.heads, case.head_dim)
    q, k, v, do = (jax.random.normal(key, shape, jnp.bfloat16) for key in ks)
    call = attention_fn(impl, tiles)

    def forward(q, k, v, facts):
        return call(q, k, v, **facts)

    def forward_backward(q, k, v, do, facts):
        out, pullback = jax.vjp(lambda q, k, v: forward(q, k, v, facts), q, k, v)
        return out, pullback(do)

    fwd_s = time_call(jax.jit(forward), (q, k, v, facts), reps)
    both_s = time_call(jax.jit(forward_backward), (q, k, v, do, facts), reps)
    flops = case.flops()
    return {
        "fwd_ms": fwd_s * 1e3,
        "fwd_useful": flops * allowed / fwd_s / 1e12,
        "fwd_dense": flops / fwd_s / 1e12,
        "fb_ms": both_s * 1e3,
        "fb_useful": 3.5 * flops * allowed / both_s / 1e12,
        "fb_dense": 3.5 * flops / both_s / 1e12,
        "allowed": allowed,
    }


HEADER = (
    f"{'impl':<12} {'Dh':>4} {'L':>6} {'B':>3} {'H':>3} {'mask':<12} {'valid':>6} "
    f"{'fwd ms':>9} {'TF/s use':>9} {'TF/s dns':>9} {'f+b ms':>9} {'TF/s use':>9} {'TF/s dns':>9}"
)


def format_row(case: Case, impl: str, result: dict | str) -> str:
    head = f"{impl:<12} {case.head_dim:>4} {case.length:>6} {case.batch:>3} {case.heads:>3} {case.mask:<12}"
    if isinstance(result, str):
        return f"{head} {'':>6} {result}"
    r = result
    return (
        f"{head} {r['allowed']:>6.0%} {r['fwd_ms']:>9.3f} {r['fwd_useful']:>9.3g} {r['fwd_dense']:>9.3g} "
        f"{r['fb_ms']:>9.3f} {r['fb_useful']:>9.3g} {r['fb_dense']:>9.3g}"
    )


def tune(head_dim: int, length: int, tokens: int, width: int, reps: int, emit) -> BlockSizes | None:
    """Time `TUNE_CONFIGS` on dense attention; the fastest forward whose backward compiles."""
    case = Case(head_dim, length, max(1, tokens // length), max(1, width // head_dim), "dense")
    best, best_ms = None, float("inf")
    for block_q, block_k, warps, stages in TUNE_CONFIGS:
        tiles = BlockSizes(block_q, block_k, warps, stages)
        try:
            result = run_case(case, "pallas", reps, tiles)
        except Exception as error:  # a setting that does not compile is skipped, not fatal
            result = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:60]}"
        emit(format_row(case, f"t{block_q}x{block_k}w{warps}s{stages}", result))
        if isinstance(result, dict) and result["fwd_ms"] < best_ms:
            best, best_ms = tiles, result["fwd_ms"]
    return best


def check_targets(records: list[dict], head_dim: int = 128, min_length: int = 2048) -> list[str]:
    """The [gpu] issue's attention targets, bf16 forward, from `--json` records.

    1. dense: pallas at least as fast as cudnn;
    2. half the tiles empty (`halfblocks`): pallas at least 1.6x faster than pallas with
       an all-True mask (`ones`).
    """
    cell = {(r["impl"], r["head_dim"], r["length"], r["mask"]): r["fwd_ms"] for r in records}
    lines = [
        "| head dim | L | pallas dense ms | cudnn dense ms | cudnn / pallas (target >= 1) "
        "| pallas ones ms | pallas halfblocks ms | ones / halfblocks (target >= 1.6) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lengths = sorted({r["length"] for r in records if r["head_dim"] == head_dim and r["length"] >= min_length})

    def get(*key):
        value = cell.get(key)
        return "n/a" if value is None else f"{value:.3f}"

    def ratio(a, b, target):
        if a is None or b is None:
            return "n/a"
        return f"{a / b:.2f}x {'met' if a / b >= target else 'missed'}"

    for length in lengths:
        pallas, cudnn = cell.get(("pallas", head_dim, length, "dense")), cell.get(("cudnn", head_dim, length, "dense"))
        ones = cell.get(("pallas", head_dim, length, "ones"))
        half = cell.get(("pallas", head_dim, length, "halfblocks"))
        lines.append(
            f"| {head_dim} | {length} | {get('pallas', head_dim, length, 'dense')} "
            f"| {get('cudnn', head_dim, length, 'dense')} | {ratio(cudnn, pallas, 1.0)} "
            f"| {get('pallas', head_dim, length, 'ones')} | {get('pallas', head_dim, length, 'halfblocks')} "
            f"| {ratio(ones, half, 1.6)} |"
        )
    return lines


def main(argv=None) -> int:
    platform = jax.default_backend()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action=argparse.BooleanOptionalAction, default=platform != "gpu")
    parser.add_argument("--head-dims", type=int, nargs="+")
    parser.add_argument("--lengths", type=int, nargs="+")
    parser.add_argument("--masks", nargs="+", choices=MASKS)
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument(
        "--only",
        nargs="+",
        default=[],
        metavar="IMPL=MASK,MASK",
        help="run an implementation only on these masks, e.g. xla=dense cudnn=dense,pad50",
    )
    parser.add_argument("--tokens", type=int, help="batch * length (default 16384; small: 128)")
    parser.add_argument("--width", type=int, help="heads * head dim (default 2048; small: 128)")
    parser.add_argument("--reps", type=int, help="timed calls per measurement (default 10; small: 3)")
    parser.add_argument("--tune", action="store_true", help="pick the pallas Triton settings first (see above)")
    parser.add_argument("--tune-length", type=int, default=4096)
    parser.add_argument("--tune-head-dims", type=int, nargs="+", help="tune only these head dims (default all)")
    parser.add_argument("--budget-s", type=float, default=0.0, help="stop starting new cases after this")
    parser.add_argument("--out", help="also write the table to this file")
    parser.add_argument("--json", help="also write one JSON object per measured cell to this file")
    parser.add_argument("--targets", help="print the [gpu] targets table from this --json file, then exit")
    args = parser.parse_args(argv)
    if args.targets:
        records = [json.loads(line) for line in Path(args.targets).read_text().splitlines() if line.strip()]
        print("\n".join(check_targets(records)))
        return 0

    small = args.small
    head_dims = args.head_dims or [64, 128]
    lengths = args.lengths or ([128] if small else [256, 512, 1024, 2048, 4096, 8192])
    masks = args.masks or (["dense", "pad50", "blockcausal"] if small else list(MASKS))
    tokens = args.tokens or (128 if small else 16384)
    width = args.width or (128 if small else 2048)
    reps = args.reps or (3 if small else 10)
    only = {}
    for rule in args.only:
        impl, _, names = rule.partition("=")
        if impl not in IMPLS or not names or any(m not in MASKS for m in names.split(",")):
            parser.error(f"--only {rule!r}: expected IMPL=MASK[,MASK] with IMPL in {IMPLS} and masks from {MASKS}")
        only[impl] = names.split(",")

    header = [
        f"# attention benchmark: platform={platform} device={jax.devices()[0].device_kind} "
        f"jax={jax.__version__} dtype=bfloat16 tokens={tokens} width={width} reps={reps}"
        + (" (small: pallas in interpret mode on CPU; a smoke check, not a measurement)" if small else ""),
        HEADER,
    ]
    out = Path(args.out).open("w") if args.out else None
    records = Path(args.json).open("w") if args.json else None

    def emit(line: str) -> None:
        # Written line by line, so a run cut short still leaves its table behind.
        print(line, flush=True)
        if out:
            out.write(line + "\n")
            out.flush()

    for line in header:
        emit(line)
    start = time.perf_counter()
    tiles: dict[int, BlockSizes | None] = {}
    for head_dim in head_dims:
        tiles[head_dim] = None
        if args.tune and (not args.tune_head_dims or head_dim in args.tune_head_dims):
            tiles[head_dim] = tune(head_dim, min(args.tune_length, max(lengths)), tokens, width, reps, emit)
            emit(f"# tuned pallas settings, head dim {head_dim}: {tiles[head_dim]}")
    stopped = False
    for head_dim in head_dims:
        for length in lengths:
            for mask in masks:
                if args.budget_s and time.perf_counter() - start > args.budget_s:
                    stopped = True
                    break
                case = Case(head_dim, length, max(1, tokens // length), max(1, width // head_dim), mask)
                for impl in args.impls:
                    if impl in only and mask not in only[impl]:
                        continue
                    if impl == "cudnn" and platform != "gpu":
                        result = "n/a: cudnn needs a GPU"
                    else:
                        try:
                            result = run_case(case, impl, reps, tiles[head_dim])
                        except Exception as error:  # one failing cell must not stop the table
                            result = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:80]}"
                    emit(format_row(case, impl, result))
                    if records and isinstance(result, dict):
                        records.write(json.dumps({"impl": impl, **dataclasses.asdict(case), **result}) + "\n")
                        records.flush()
    if stopped:
        emit(f"# stopped after --budget-s {args.budget_s:.0f}s; later cases not run")
    emit(f"# total {time.perf_counter() - start:.1f}s")
    for handle in (out, records):
        if handle:
            handle.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
