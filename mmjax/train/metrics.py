"""Metric sinks: JSONL file, optional TensorBoard, and a console progress line."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import jax
from etils import epath


class MetricWriter:
    """Writes scalar metrics from process 0 only: `metrics.jsonl` (+ TensorBoard if available)."""

    def __init__(self, workdir: str, total_steps: int, tensorboard: bool = True):
        self.active = jax.process_index() == 0
        self.total_steps = total_steps
        self._file = None
        self._tb = None
        self._start = time.time()
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

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.active:
            return
        row = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in row.items():
                if key != "step":
                    self._tb.add_scalar(key, value, step)
        self._progress(step, row)

    def _progress(self, step: int, row: dict[str, float]) -> None:
        fraction = step / max(1, self.total_steps)
        bar = "#" * int(20 * fraction) + "." * (20 - int(20 * fraction))
        shown = " ".join(f"{k} {row[k]:.4g}" for k in ("loss", "lr", "grad_norm", "examples_per_s") if k in row)
        elapsed = time.time() - self._start
        print(f"[{bar}] step {step}/{self.total_steps} {shown} ({elapsed:.0f}s)", file=sys.stdout, flush=True)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
