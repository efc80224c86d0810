"""MAE pretraining throughput and model-FLOPs utilization (MFU), mmjax vs HF transformers.

Three sub-commands, run one after the other (separate processes, so JAX and PyTorch do
not share the card's memory); each appends JSON lines to `--json`:

    python benchmarks/mae_mfu.py jax   --sizes base,large --json mfu.jsonl --trace-dir traces
    python benchmarks/mae_mfu.py torch --sizes base,large --compile base --json mfu.jsonl
    python benchmarks/mae_mfu.py report --json mfu.jsonl

`jax` measures the card's bf16 matrix rate (an `N x N x N` product on random data),
then for each ViT size (MAE at 224/16, mask 0.75, bf16 compute, float32 parameters and
AdamW): picks the batch (start at `--batch`, halve while the compiled step's memory
analysis exceeds the device's memory, double once when twice the batch is predicted to
fit), times full training steps, and counts the step's FLOPs with XLA's cost analysis.
The count comes from the step lowered with `xla` attention, whose products are plain
dots (cuDNN's fused attention is a custom call that the analysis cannot see); the timed
step uses `--attention` (default `auto`: cuDNN on GPU). MFU = counted FLOPs per second /
measured matrix rate. With `--trace-dir`, three steps are traced with `jax.profiler`
(see `trace_summary.py`).

`torch` times HF's `ViTMAEForPreTraining` with the same shapes: bf16 autocast, fused
AdamW, the batch the `jax` run used (halved on out-of-memory), eager and, for the sizes
in `--compile`, with `torch.compile`.

`report` prints one markdown table from the JSON lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def peak_matmul_tflops(n: int, steps: int) -> float:
    """Measured bf16 matrix rate: `[n, n] @ [n, n]` on random data."""
    import jax
    import jax.numpy as jnp

    a, b = (jax.random.normal(jax.random.key(i), (n, n), jnp.bfloat16) for i in range(2))
    product = jax.jit(jnp.matmul)
    from attention import time_call

    return 2.0 * n**3 / time_call(product, (a, b), steps) / 1e12


def analytic_flops(method) -> float:
    """Matmul FLOPs of one training example (forward + backward = 3x forward).

    Encoder on the kept tokens plus [CLS], decoder on all tokens plus [CLS]: per token
    and block `2 * (4 D^2 + 2 D M)` for the projections and MLP and `4 L D` for the
    two attention products; plus patch embedding, decoder embedding and pixel head.
    """
    cfg, dec = method.model_config, method.decoder_config
    patches = cfg.num_patches
    patch_dim = cfg.patch_size[0] * cfg.patch_size[1] * cfg.channels
    kept = patches - int(patches * method.mask_ratio)

    def stack(tokens, width, mlp, depth):
        return depth * tokens * (2 * (4 * width * width + 2 * width * mlp) + 4 * tokens * width)

    forward = (
        2 * patches * patch_dim * cfg.width
        + stack(kept + 1, cfg.width, cfg.mlp_dim, cfg.depth)
        + 2 * (kept + 1) * cfg.width * dec.width
        + stack(patches + 1, dec.width, dec.mlp_dim, dec.depth)
        + 2 * patches * dec.width * patch_dim
    )
    return 3.0 * forward


def step_flops(step, *shapes) -> tuple[float | None, str]:
    """XLA's FLOP count of the step's HLO before optimization.

    Asked of the platform's lowering first; where that gives none (jax 0.11 on GPU
    returned None), of the same step lowered for the CPU, whose HLO has the same dots.
    """
    import warnings

    counted = step.lower(*shapes).cost_analysis()
    source = "xla"
    if not counted:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unusable donations on the CPU lowering
            counted = step.trace(*shapes).lower(lowering_platforms=("cpu",)).cost_analysis()
        source = "xla (cpu lowering)"
    counted = counted[0] if isinstance(counted, list) else counted
    return (float(counted["flops"]), source) if counted and "flops" in counted else (None, "")


def jax_method(size: str, image: int, attention: str):
    from mae_step import method_for

    config, _ = method_for(size, image, 16, "bfloat16")
    config.model.attention_impl = attention
    from mmjax.methods import build_method

    return build_method(config)


def jax_size(args, size: str, batch: int, limit: int, peak: float) -> dict:
    import jax
    import jax.numpy as jnp
    import optax

    attention = args.attention
    method = jax_method(size, args.image_size, attention)
    cfg = method.model_config
    opt = optax.adamw(1e-4, b1=0.9, b2=0.95, weight_decay=0.05)

    def make_step(method):
        def step(state, images):
            key = jax.random.fold_in(jax.random.key(3), state["step"])
            loss, grads = jax.value_and_grad(lambda p: method.loss(p, {"image": images}, key)[0])(state["params"])
            updates, opt_state = opt.update(grads, state["opt"], state["params"])
            new = {"params": optax.apply_updates(state["params"], updates), "opt": opt_state, "step": state["step"] + 1}
            return new, loss

        return jax.jit(step, donate_argnums=0)

    def images_for(batch):
        return jax.random.normal(jax.random.key(0), (batch, *cfg.image_size, cfg.channels), jnp.float32)

    params = method.init(jax.random.key(1), {"image": images_for(2)})
    state = {"params": params, "opt": opt.init(params), "step": jnp.zeros((), jnp.int32)}
    shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
    step = make_step(method)

    grown, tried = False, []
    while True:
        images = jax.ShapeDtypeStruct((batch, *cfg.image_size, cfg.channels), jnp.float32)
        start = time.perf_counter()
        try:
            compiled = step.lower(state, images).compile()
        except NotImplementedError as error:  # e.g. an attention impl the platform refuses
            if attention == "xla":
                raise
            print(f"# {size}: attention {attention!r} failed ({str(error).splitlines()[0]}); timing 'xla'")
            attention = "xla"
            method = jax_method(size, args.image_size, attention)
            step = make_step(method)
            continue
        compile_s = time.perf_counter() - start
        mem = compiled.memory_analysis()
        fixed = mem.argument_size_in_bytes + mem.output_size_in_bytes - mem.alias_size_in_bytes
        total = fixed + mem.temp_size_in_bytes
        doubled = fixed + 2 * mem.temp_size_in_bytes + 4 * images.size  # over-estimate
        tried.append({"batch": batch, "gib": total / 2**30, "compile_s": compile_s})
        gib = f"{total / 2**30:.1f} GiB of {limit / 2**30:.1f}"
        print(f"# {size}: batch {batch} needs {gib} ({compile_s:.0f}s compile)")
        if total > limit:
            if grown:  # the doubled batch does not fit: keep the last one
                break
            if batch == 1:
                raise SystemExit(f"{size}: even batch 1 needs {gib}")
            batch //= 2
            continue
        fitted = batch, compiled, total, doubled
        if not grown and doubled <= limit:
            batch, grown = batch * 2, True
            continue
        break
    batch, compiled, total, doubled = fitted
    images = jax.ShapeDtypeStruct((batch, *cfg.image_size, cfg.channels), jnp.float32)

    data = images_for(batch)
    holder = [state]

    def run():
        holder[0], loss = compiled(holder[0], data)
        return loss

    from attention import time_call

    seconds = time_call(run, (), args.steps, rounds=1)
    loss = float(run())
    flops, flops_source = step_flops(make_step(jax_method(size, args.image_size, "xla")), shapes, images)
    if flops is None:
        flops, flops_source = analytic_flops(method) * batch, "analytic"
    row = {
        "framework": "mmjax",
        "size": size,
        "batch": batch,
        "attention": attention,
        "device": jax.devices()[0].device_kind,
        "step_s": seconds,
        "examples_per_s": batch / seconds,
        "step_flops": flops,
        "flops_source": flops_source,
        "step_flops_analytic": analytic_flops(method) * batch,
        "tflops": flops / seconds / 1e12,
        "peak_tflops": peak,
        "mfu": flops / seconds / 1e12 / peak,
        "memory_gib": total / 2**30,
        "device_gib": limit / 2**30,
        "doubled_gib_predicted": doubled / 2**30,
        "tried": tried,
        "loss": loss,
    }
    if args.trace_dir:
        trace = Path(args.trace_dir) / size
        jax.profiler.start_trace(str(trace), create_perfetto_trace=True)
        for _ in range(3):
            run()
        jax.block_until_ready(holder[0])
        jax.profiler.stop_trace()
        row["trace"] = str(trace)
    return row


def run_jax(args) -> None:
    import jax

    device = jax.devices()[0]
    stats = device.memory_stats() or {}
    limit = int(stats.get("bytes_limit", args.memory_gib * 2**30))
    peak = peak_matmul_tflops(args.peak_n, args.steps)
    emit(args, {"framework": "peak", "device": device.device_kind, "peak_tflops": peak, "n": args.peak_n})
    for size, batch in zip(args.sizes.split(","), first_batches(args), strict=True):
        emit(args, jax_size(args, size, batch, limit, peak))


def torch_size(args, size: str, batch: int, compiled: bool) -> dict:
    import torch
    import transformers
    from mae_step import hf_config, hf_step_timing

    config = hf_config(jax_method(size, args.image_size, "xla"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    while True:
        try:
            seconds, warmup_s, loss, attention = hf_step_timing(config, batch, args.steps, device, compiled=compiled)
            break
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            print(f"# torch {size}: batch {batch} is out of memory, halving")
            batch //= 2
            if batch < 1:
                raise
    return {
        "framework": "hf-compile" if compiled else "hf-eager",
        "size": size,
        "batch": batch,
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "attention": attention,
        "step_s": seconds,
        "examples_per_s": batch / seconds,
        "warmup_s": warmup_s,
        "loss": loss,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def first_batches(args) -> list[int]:
    """`--batch`: one value for every size, or one per size."""
    sizes, values = args.sizes.split(","), [int(b) for b in args.batch.split(",")]
    if len(values) not in (1, len(sizes)) or min(values) < 1:
        raise SystemExit(f"--batch {args.batch!r}: give one positive batch, or one per size in {sizes}")
    return values * len(sizes) if len(values) == 1 else values


def run_torch(args) -> None:
    batches = {row["size"]: row["batch"] for row in read(args.json) if row.get("framework") == "mmjax"}
    compile_sizes = set(args.compile.split(",")) if args.compile else set()
    for size, fallback in zip(args.sizes.split(","), first_batches(args), strict=True):
        batch = batches.get(size, fallback)
        emit(args, torch_size(args, size, batch, compiled=False))
        if size in compile_sizes:
            emit(args, torch_size(args, size, batch, compiled=True))


def read(path: str) -> list[dict]:
    file = Path(path)
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()] if file.exists() else []


def emit(args, row: dict) -> None:
    print(json.dumps(row), flush=True)
    with open(args.json, "a") as handle:
        handle.write(json.dumps(row) + "\n")


def _rate(row: dict | None, ours: dict | None) -> str:
    if row is None:
        return "n/a"
    note = "" if ours is None or row["batch"] == ours["batch"] else f" (batch {row['batch']})"
    return f"{row['examples_per_s']:.0f}{note}"


def _ratio(ours: dict | None, row: dict | None) -> str:
    return "n/a" if row is None or ours is None else f"{ours['examples_per_s'] / row['examples_per_s']:.2f}x"


def report(rows: list[dict]) -> str:
    """One markdown table: per size, mmjax's rate and MFU beside HF eager and compiled."""
    lines = []
    peaks = [row for row in rows if row.get("framework") == "peak"]
    if peaks:
        lines.append(f"Measured bf16 matrix rate ({peaks[-1]['device']}): {peaks[-1]['peak_tflops']:.0f} TFLOP/s")
        lines.append("")
    lines += [
        "| size | batch | mmjax ex/s | TFLOP/s (FLOPs counted by) | MFU | HF eager ex/s | HF compile ex/s "
        "| mmjax / eager | mmjax / compile |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    sizes = list(dict.fromkeys(row["size"] for row in rows if "size" in row))
    for size in sizes:
        ours = next((r for r in rows if r.get("framework") == "mmjax" and r["size"] == size), None)
        eager = next((r for r in rows if r.get("framework") == "hf-eager" and r["size"] == size), None)
        comp = next((r for r in rows if r.get("framework") == "hf-compile" and r["size"] == size), None)

        batch = ours["batch"] if ours else (eager or comp or {}).get("batch", "?")
        counted = "n/a | n/a"
        if ours:
            counted = f"{ours['tflops']:.0f} ({ours.get('flops_source', 'xla')}) | {ours['mfu']:.1%}"
        lines.append(
            f"| {size} | {batch} | {_rate(ours, ours)} | {counted} | {_rate(eager, ours)} | {_rate(comp, ours)} "
            f"| {_ratio(ours, eager)} | {_ratio(ours, comp)} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("jax", "torch", "report"))
    parser.add_argument("--sizes", default="base,large")
    parser.add_argument(
        "--batch", default="512", help="first batch tried (jax) or used without a jax row (torch); one, or one per size"
    )
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--attention", default="auto", help="mmjax attention impl of the timed step")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--peak-n", type=int, default=8192, help="matrix size of the peak-rate product")
    parser.add_argument("--memory-gib", type=float, default=16.0, help="memory limit where the device reports none")
    parser.add_argument("--compile", default="", help="comma-separated sizes also timed with torch.compile")
    parser.add_argument("--trace-dir", help="jax: trace three steps per size here")
    parser.add_argument("--json", required=True, help="JSON lines file (appended to)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
    if args.command == "jax":
        run_jax(args)
    elif args.command == "torch":
        run_torch(args)
    else:
        print(report(read(args.json)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
