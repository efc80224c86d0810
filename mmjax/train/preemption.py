"""Preemption: SIGTERM (how TPU VMs and cloud GPUs announce eviction) -> finish the step, save, exit 42.

The loop asks `watcher.should_stop()` after every step. The signal handler only sets a flag;
with several processes they agree with one tiny all-gather so that every process stops after
the same step and the checkpoint is complete. The run then raises `Preempted`, a `SystemExit`
with status `PREEMPTED_EXIT_CODE`; rerunning the same command resumes from that checkpoint.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from mmjax.train.distributed import any_process

PREEMPTED_EXIT_CODE = 42


class Preempted(SystemExit):
    """The run stopped on a preemption notice after saving `step`; exit status 42."""

    def __init__(self, step: int):
        super().__init__(PREEMPTED_EXIT_CODE)
        self.step = step

    def __str__(self) -> str:
        return f"preempted: saved step {self.step}; rerun the same command to resume"


class PreemptionWatcher:
    """Context manager that turns SIGTERM into a flag every process agrees on.

    Args:
      signals: the signals that mean "preempted" (default SIGTERM).
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM,)):
        self.signals = signals
        self.received = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        del frame
        self.received = True
        print(f"received signal {signum}: stopping after this step", flush=True)

    def __enter__(self) -> PreemptionWatcher:
        if threading.current_thread() is threading.main_thread():  # handlers only install there
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def should_stop(self) -> bool:
        """Whether any process got the signal; a collective, so every process must call it each step."""
        return any_process(self.received)


__all__ = ["PREEMPTED_EXIT_CODE", "Preempted", "PreemptionWatcher"]
