"""Metric sinks: `metrics.jsonl`, optional TensorBoard, and the console progress line (process 0 only)."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any

import jax
from etils import epath


def json_value(value: Any) -> float | None:
    """A metric as JSON allows it: NaN and Inf become null (the run's error message names them)."""
    value = float(value)
    return value if math.isfinite(value) else None


class MetricWriter:
    """Writes scalar metrics from process 0 only: `metrics.jsonl` (+ TensorBoard if available)."""

    def __init__(self, workdir: str, tensorboard: bool = True):
        self.active = jax.process_index() == 0
        self._file = None
        self._tb = None
        if not self.active:
            return
        folder = epath.Path(workdir)  # local or a bucket (gs://...)
        folder.mkdir(parents=True, exist_ok=True)
        self._file = (folder / "metrics.jsonl").open("a")
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter

                self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
            except ImportError:
                self._tb = None
                print(
                    "note: train.tensorboard is on but tensorboardX is not installed, so only metrics.jsonl is "
                    "written (pip install 'mmjax[tensorboard]', or --config.train.tensorboard=False)",
                    flush=True,
                )

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.active:
            return
        row = {"step": int(step), **{k: json_value(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in metrics.items():
                self._tb.add_scalar(key, float(value), step)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()


def duration(seconds: float) -> str:
    """`42s`, `3m05s`, `2h04m`."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """The console line: at every logged step, and at least every `every_s` seconds in between.

    `[#####...............] step 120/2000 loss 0.31 lr 0.0015 grad_norm 0.48 examples_per_s 830 (25s, ETA 6m32s)`
    """

    SHOWN = ("loss", "lr", "grad_norm", "examples_per_s", "skipped_updates")

    def __init__(self, start: int, total: int, every_s: float = 10.0):
        self.active = jax.process_index() == 0
        self.start, self.total, self.every_s = start, total, every_s
        self._t0 = self._last = time.perf_counter()

    def update(self, step: int, row: dict[str, Any], force: bool = False) -> None:
        now = time.perf_counter()
        if not self.active or not (force or now - self._last >= self.every_s):
            return
        self._last = now
        fraction = step / max(1, self.total)
        bar = "#" * int(20 * fraction) + "." * (20 - int(20 * fraction))
        shown = " ".join(f"{k} {float(row[k]):.4g}" for k in self.SHOWN if k in row)
        elapsed = now - self._t0
        done = step - self.start
        eta = f", ETA {duration(elapsed / done * (self.total - step))}" if 0 < done and step < self.total else ""
        print(f"[{bar}] step {step}/{self.total} {shown} ({duration(elapsed)}{eta})", file=sys.stdout, flush=True)
