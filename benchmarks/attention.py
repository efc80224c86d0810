"""Attention speed: pallas vs cudnn vs xla, forward and forward+backward, with masks.

For each head dim, sequence length and mask, every implementation runs on the same
bf16 inputs (batch * length = 16k tokens, 2048 model width) and the table gives the
time and the TFLOP/s, counted two ways: `useful` counts only the query-key pairs the
mask allows, `dense` counts the whole `L x L` product (what a dense kernel does).
Forward FLOPs are `4 * B * H * Lq * Lk * Dh`; forward+backward is 3.5x that
(the backward does 2.5x the forward's matrix work).

Masks: `dense`; `padN` (N% of the keys valid per example, `key_lengths`);
`blockcausal` (8 frames, each sees itself and the earlier frames: about 56% of the
pairs; a block-sparse mask that the pallas kernel skips tile by tile).

    python benchmarks/attention.py              # GPU: the full sweep; CPU: --small
    python benchmarks/attention.py --small      # a smoke run (interpret mode on CPU)
    python benchmarks/attention.py --out attention.txt --budget-s 150

On CPU, pallas runs in interpret mode and cudnn is reported as unavailable: the
numbers only show that the script works.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from mmjax.kernels import block_causal_mask  # noqa: E402
from mmjax.ops.attention import attention  # noqa: E402

IMPLS = ("pallas", "cudnn", "xla")
MASKS = ("dense", "pad75", "pad50", "pad25", "blockcausal")


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


def time_call(fn, args, reps: int) -> float:
    """Median seconds per call after one warm-up (compile) call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run_case(case: Case, impl: str, reps: int) -> dict:
    facts, allowed = case.facts()
    ks = jax.random.split(jax.random.key(0), 4)
    shape = (case.batch, case.length, case.heads, case.head_dim)
    q, k, v, do = (jax.random.normal(key, shape, jnp.bfloat16) for key in ks)

    def forward(q, k, v, facts):
        return attention(q, k, v, impl=impl, **facts)

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
    f"{'impl':<7} {'Dh':>4} {'L':>6} {'B':>3} {'H':>3} {'mask':<12} {'valid':>6} "
    f"{'fwd ms':>9} {'TF/s use':>9} {'TF/s dns':>9} {'f+b ms':>9} {'TF/s use':>9} {'TF/s dns':>9}"
)


def format_row(case: Case, impl: str, result: dict | str) -> str:
    head = f"{impl:<7} {case.head_dim:>4} {case.length:>6} {case.batch:>3} {case.heads:>3} {case.mask:<12}"
    if isinstance(result, str):
        return f"{head} {'':>6} {result}"
    r = result
    return (
        f"{head} {r['allowed']:>6.0%} {r['fwd_ms']:>9.3f} {r['fwd_useful']:>9.3g} {r['fwd_dense']:>9.3g} "
        f"{r['fb_ms']:>9.3f} {r['fb_useful']:>9.3g} {r['fb_dense']:>9.3g}"
    )


def main(argv=None) -> int:
    platform = jax.default_backend()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action=argparse.BooleanOptionalAction, default=platform != "gpu")
    parser.add_argument("--head-dims", type=int, nargs="+")
    parser.add_argument("--lengths", type=int, nargs="+")
    parser.add_argument("--masks", nargs="+", choices=MASKS)
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--tokens", type=int, help="batch * length (default 16384; small: 128)")
    parser.add_argument("--width", type=int, help="heads * head dim (default 2048; small: 128)")
    parser.add_argument("--reps", type=int, help="timed calls per measurement (default 10; small: 3)")
    parser.add_argument("--budget-s", type=float, default=0.0, help="stop starting new cases after this")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)

    small = args.small
    head_dims = args.head_dims or [64, 128]
    lengths = args.lengths or ([128] if small else [256, 512, 1024, 2048, 4096, 8192])
    masks = args.masks or (["dense", "pad50", "blockcausal"] if small else list(MASKS))
    tokens = args.tokens or (128 if small else 16384)
    width = args.width or (128 if small else 2048)
    reps = args.reps or (3 if small else 10)

    header = [
        f"# attention benchmark: platform={platform} device={jax.devices()[0].device_kind} "
        f"jax={jax.__version__} dtype=bfloat16 tokens={tokens} width={width} reps={reps}"
        + (" (small: pallas in interpret mode on CPU; a smoke check, not a measurement)" if small else ""),
        HEADER,
    ]
    out = Path(args.out).open("w") if args.out else None

    def emit(line: str) -> None:
        # Written line by line, so a run cut short still leaves its table behind.
        print(line, flush=True)
        if out:
            out.write(line + "\n")
            out.flush()

    for line in header:
        emit(line)
    start = time.perf_counter()
    stopped = False
    for head_dim in head_dims:
        for length in lengths:
            for mask in masks:
                if args.budget_s and time.perf_counter() - start > args.budget_s:
                    stopped = True
                    break
                case = Case(head_dim, length, max(1, tokens // length), max(1, width // head_dim), mask)
                for impl in args.impls:
                    if impl == "cudnn" and platform != "gpu":
                        result = "n/a: cudnn needs a GPU"
                    else:
                        try:
                            result = run_case(case, impl, reps)
                        except Exception as error:  # one failing cell must not stop the table
                            result = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:80]}"
                    emit(format_row(case, impl, result))
    if stopped:
        emit(f"# stopped after --budget-s {args.budget_s:.0f}s; later cases not run")
    emit(f"# total {time.perf_counter() - start:.1f}s")
    if out:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
