"""Where a traced step's device time goes: a summary of a `jax.profiler` trace.

Reads the `perfetto_trace.json.gz` that `jax.profiler.start_trace(...,
create_perfetto_trace=True)` writes, takes the GPU stream rows (on a machine without a
GPU: the XLA worker threads), and prints per kernel category and per kernel the time
per step and its share of the device's busy time, plus how much of the traced span the
device sat idle.

    python benchmarks/trace_summary.py traces/base --steps 3
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import sys
from pathlib import Path

# First match wins; names are lower-cased kernel or XLA op names.
CATEGORIES = (
    ("attention", re.compile(r"fmha|flash|cudnn|attention|sdpa")),
    ("matmul", re.compile(r"gemm|cutlass|xmma|nvjet|cublas|sm90_|sm80_|dot|matmul|wgmma")),
    ("copy/transpose", re.compile(r"copy|transpose|memcpy|memset|dynamic.update.slice|concatenate")),
    ("reduction", re.compile(r"reduce|reduction|row_reduction|softmax|norm")),
    ("elementwise fusion", re.compile(r"fusion|loop_|input_|triton|elementwise|add|multiply|convert")),
)


def categorize(name: str) -> str:
    lowered = name.lower()
    for category, pattern in CATEGORIES:
        if pattern.search(lowered):
            return category
    return "other"


def trace_file(path: Path) -> Path:
    if path.is_file():
        return path
    found = sorted(path.rglob("perfetto_trace.json.gz"))
    if not found:
        raise FileNotFoundError(f"no perfetto_trace.json.gz under {path}")
    return found[-1]


def device_events(events: list[dict]) -> tuple[list[dict], str]:
    """The kernel events: GPU stream rows if any, else the XLA worker threads."""
    process = {e["pid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e.get("name") == "process_name"}
    thread = {
        (e["pid"], e["tid"]): e["args"]["name"] for e in events if e.get("ph") == "M" and e.get("name") == "thread_name"
    }
    spans = [e for e in events if e.get("ph") == "X" and "dur" in e]
    gpu = {pid for pid, name in process.items() if "gpu" in name.lower()}
    streams = [e for e in spans if e["pid"] in gpu and thread.get((e["pid"], e["tid"]), "").startswith("Stream")]
    if streams:
        return streams, "GPU streams"
    ops = [e for e in spans if e["pid"] in gpu and "XLA Ops" in thread.get((e["pid"], e["tid"]), "")]
    if ops:
        return ops, "GPU XLA ops"
    workers = [e for e in spans if "XLA" in thread.get((e["pid"], e["tid"]), "") and not e["name"].startswith("$")]
    return workers, "host XLA threads"


def summarize(path: Path, steps: int, top: int) -> str:
    events = json.load(gzip.open(trace_file(path)))
    events = events["traceEvents"] if isinstance(events, dict) else events
    kernels, source = device_events(events)
    if not kernels:
        return f"no device events in {path}"
    busy = sum(e["dur"] for e in kernels)
    span = max(e["ts"] + e["dur"] for e in kernels) - min(e["ts"] for e in kernels)
    by_category = collections.Counter()
    by_name = collections.Counter()
    counts = collections.Counter()
    for e in kernels:
        by_category[categorize(e["name"])] += e["dur"]
        by_name[e["name"]] += e["dur"]
        counts[e["name"]] += 1
    ms = 1e-3 / steps
    lines = [
        f"trace {path}: {source}, {len(kernels) / steps:.0f} kernels per step; busy {busy * ms:.2f} ms per step "
        f"of a {span * ms:.2f} ms span ({1 - busy / span:.0%} idle; overlapping streams count twice)",
        "",
        "| category | ms / step | share of busy |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {c} | {t * ms:.2f} | {t / busy:.1%} |" for c, t in by_category.most_common()]
    lines += ["", "| kernel | category | calls / step | ms / step | share |", "| --- | --- | --- | --- | --- |"]
    for name, t in by_name.most_common(top):
        short = name if len(name) <= 70 else name[:67] + "..."
        lines.append(f"| `{short}` | {categorize(name)} | {counts[name] / steps:.0f} | {t * ms:.3f} | {t / busy:.1%} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("traces", nargs="+", help="trace folders (or perfetto_trace.json.gz files)")
    parser.add_argument("--steps", type=int, default=3, help="steps in each trace")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    for path in args.traces:
        print(summarize(Path(path), args.steps, args.top))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
