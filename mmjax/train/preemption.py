"""Preemption: SIGTERM (how TPU VMs and cloud GPUs announce eviction) -> finish the step, save, exit 42.

The command line also watches SIGINT (Ctrl-C) the same way, with exit status 130; a second Ctrl-C
exits at once, keeping the checkpoints already written.

The loop asks `watcher.should_stop()` after every step. The signal handler only sets a flag;
with several processes they agree through one tiny max-reduction per step, so that every
process stops after the same step and the checkpoint is complete. The reduction is read one
step late (it runs on the devices right behind the step before), so the host never waits
for the step it just dispatched: a signal stops the run at most two steps later (one step
in a single process). The run then raises `Preempted`, a `SystemExit` with status
`PREEMPTED_EXIT_CODE`; rerunning the same command resumes from that checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

PREEMPTED_EXIT_CODE = 42
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, what shells report for Ctrl-C


class Preempted(SystemExit):
    """The run stopped on a signal after saving `step`: exit status 42 (SIGTERM) or 130 (SIGINT)."""

    def __init__(self, step: int, status: int = PREEMPTED_EXIT_CODE):
        super().__init__(status)
        self.step = step

    def __str__(self) -> str:
        saved = f"the last checkpoint is step {self.step}" if self.step else "no checkpoint was written yet"
        what = "interrupted" if self.code == INTERRUPTED_EXIT_CODE else "preempted"
        return f"{what}: {saved}; rerun the same command to resume"


class PreemptionWatcher:
    """Context manager that turns SIGTERM into a flag every process agrees on.

    Args:
      signals: the signals that mean "stop" (default SIGTERM; the command line adds SIGINT). A
        second SIGINT exits at once with status 130.
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM,)):
        self.signals = signals
        self.received = False
        self.signum: int | None = None  # the first signal received
        self._previous: dict[int, object] = {}
        self._pending: jax.Array | None = None  # the agreement dispatched after the previous step
        self._reduce = None
        self._raise_at: int | None = None  # set by `immediate`: a signal raises `Preempted` at once

    @property
    def exit_status(self) -> int:
        """130 when the first signal was SIGINT, else 42."""
        return INTERRUPTED_EXIT_CODE if self.signum == signal.SIGINT else PREEMPTED_EXIT_CODE

    def receive(self, signum: int) -> None:
        """Record `signum` as received (also for a signal caught before the watcher was installed)."""
        self.received = True
        self.signum = signum if self.signum is None else self.signum

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        del frame
        again = self.received and signum == signal.SIGINT
        self.receive(signum)
        if again:
            print("second Ctrl-C: exiting now; the checkpoints already written are kept", flush=True)
            sys.stderr.flush()
            os._exit(INTERRUPTED_EXIT_CODE)
        if self._raise_at is not None:
            print(f"received {_name(signum)}: stopping now (step {self._raise_at} is saved)", flush=True)
            print(Preempted(self._raise_at, self.exit_status), flush=True)
            sys.stderr.flush()
            # Work inside `immediate` (evaluation) has nothing to save, and an exception raised here,
            # inside it, could leave its worker threads blocked and the process alive past the
            # signal (a CI run timed out so, under load): leave at once.
            os._exit(self.exit_status)
        hint = " (Ctrl-C again to exit now)" if signum == signal.SIGINT else ""
        print(f"received {_name(signum)}: stopping after this step{hint}", flush=True)

    @contextlib.contextmanager
    def immediate(self, saved_step: int) -> Iterator[None]:
        """Inside, a signal ends the process at once with status 42 (130 for SIGINT), printing
        `Preempted(saved_step)` (for work after the last save, such as evaluation, that can simply be
        redone)."""
        if self.received:
            raise Preempted(saved_step, self.exit_status)
        self._raise_at = saved_step
        try:
            yield
        finally:
            self._raise_at = None

    def __enter__(self) -> PreemptionWatcher:
        if threading.current_thread() is threading.main_thread():  # handlers only install there
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def reinstall(self) -> None:
        """Take the signals back (`jax.distributed.initialize` installs a SIGTERM handler of its own)."""
        if self._previous and threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                signal.signal(sig, self._handle)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _dispatch(self) -> jax.Array:
        """Start `max over processes of received` on the devices; returns without waiting."""
        if self._reduce is None:
            mesh = Mesh(np.asarray(jax.devices()), ("all",))
            self._sharding = NamedSharding(mesh, PartitionSpec("all"))
            self._reduce = jax.jit(jnp.max, out_shardings=NamedSharding(mesh, PartitionSpec()))
        local = np.full((jax.local_device_count(),), int(self.received), np.int32)
        return self._reduce(jax.make_array_from_process_local_data(self._sharding, local))

    def agree_now(self) -> bool:
        """Whether any process has received the signal, waiting for all of them (a collective)."""
        if jax.process_count() == 1:
            return self.received
        self._pending = None
        return bool(np.asarray(self._dispatch().addressable_data(0)))

    def should_stop(self) -> bool:
        """Whether to stop after the current step; every process gets the same answer.

        A collective with several processes: every process must call it once per step.
        """
        if jax.process_count() == 1:
            return self.received
        previous, self._pending = self._pending, self._dispatch()
        return previous is not None and bool(np.asarray(previous.addressable_data(0)))


def _name(signum: int) -> str:
    """`SIGINT (Ctrl-C)`, `SIGTERM`, or the number."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
    return "SIGINT (Ctrl-C)" if signum == signal.SIGINT else name


__all__ = ["INTERRUPTED_EXIT_CODE", "PREEMPTED_EXIT_CODE", "Preempted", "PreemptionWatcher"]
