"""Which checkpoints stay: `train.keep_checkpoints` confirmed, written ones, plus every newer one.

A checkpoint is *confirmed* once a later step has passed the finite check: that step's loss
was computed from the checkpointed parameters, so training can go on from them. Until then
it is *unconfirmed*: it is never deleted, and neither is the newest confirmed one before it.
If the step after it turns out bad, the unconfirmed checkpoint is moved aside
(`rejected_checkpoints/<step>.nonfinite`), and the run's last good checkpoint is the
confirmed one. A restored checkpoint starts unconfirmed.

A checkpoint saved in the background may still be being written: until the next save starts
(orbax waits for the previous one first) or the run waits for it (`all_written`), it does not
count toward `keep`, so an older one is deleted only once a newer one is on disk whole. A kill
at any moment leaves at least one finished checkpoint. Every process makes the same calls
(deletes and moves are collective in orbax), decided from the same steps, never from timing.
"""

from __future__ import annotations

from typing import Any

from mmjax.train import checkpoint


class Retention:
    """Keeps the newest `keep` confirmed checkpoints of `manager` and all unconfirmed ones.

    Args:
      manager: the run's `CheckpointManager` (created with `max_to_keep=None`).
      workdir: the run's workdir (for moving checkpoints aside).
      keep: `train.keep_checkpoints` (>= 1).
      unconfirmed: steps not yet vouched for (the restored one on resume).
      async_save: saves return before their checkpoint is written (`train.async_checkpoints`).
    """

    def __init__(
        self, manager: Any, workdir: str, keep: int, unconfirmed: tuple[int, ...] = (), async_save: bool = False
    ):
        if keep < 1:
            raise ValueError(f"train.keep_checkpoints={keep}: expected an integer >= 1")
        self.manager, self.workdir, self.keep, self.async_save = manager, workdir, keep, async_save
        self.unconfirmed = set(unconfirmed)
        self.in_flight: int | None = None  # the newest save, while it may still be being written

    def saved(self, step: int) -> None:
        """A checkpoint of `step` was written, or (asynchronous saves) is being written."""
        self.unconfirmed.add(step)
        self.in_flight = step if self.async_save else None

    def all_written(self) -> None:
        """The caller waited for the saves in the background (`manager.wait_until_finished()`)."""
        self.in_flight = None

    def confirm_before(self, step: int) -> None:
        """`step` passed the finite check: every checkpoint before it is confirmed; prune the old ones."""
        confirmed = {s for s in self.unconfirmed if s < step}
        if confirmed:
            self.unconfirmed -= confirmed
            self.prune()

    def prune(self) -> list[int]:
        """Delete the confirmed checkpoints older than the newest `keep` confirmed, written ones.

        Returns the deleted steps. A checkpoint still being written is kept but not counted.
        """
        confirmed = sorted(s for s in self.manager.all_steps() if s not in self.unconfirmed)
        written = [s for s in confirmed if s != self.in_flight]
        if len(written) <= self.keep:
            return []
        doomed = [s for s in confirmed if s < written[-self.keep]]
        for step in doomed:
            self.manager.delete(step)
        return doomed

    def reject_from(self, step: int) -> list[tuple[int, str]]:
        """Move aside the unconfirmed checkpoints at or after `step`; returns `(step, new path)` pairs."""
        moved = []
        for bad in sorted(s for s in self.unconfirmed if s >= step):
            if bad in self.manager.all_steps():
                moved.append((bad, checkpoint.move_aside(self.manager, self.workdir, bad, "nonfinite")))
            self.unconfirmed.discard(bad)
        return moved

    def last_kept(self) -> int | None:
        """The newest checkpoint still in place."""
        checkpoint.wait(self.manager)
        self.all_written()
        return self.manager.latest_step()


__all__ = ["Retention"]
