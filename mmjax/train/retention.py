"""Which checkpoints stay: `train.keep_checkpoints` confirmed ones, plus every unconfirmed newer one.

A checkpoint is *confirmed* once a later step has passed the finite check: that step's loss
was computed from the checkpointed parameters, so training can go on from them. Until then
it is *unconfirmed*: it is never deleted, and neither is the newest confirmed one before it.
If the step after it turns out bad, the unconfirmed checkpoint is moved aside
(`rejected_checkpoints/<step>.nonfinite`), and the run's last good checkpoint is the
confirmed one. A restored checkpoint starts unconfirmed. Every process makes the same calls
(deletes and moves are collective in orbax).
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
    """

    def __init__(self, manager: Any, workdir: str, keep: int, unconfirmed: tuple[int, ...] = ()):
        if keep < 1:
            raise ValueError(f"train.keep_checkpoints={keep}: expected an integer >= 1")
        self.manager, self.workdir, self.keep = manager, workdir, keep
        self.unconfirmed = set(unconfirmed)

    def saved(self, step: int) -> None:
        """A checkpoint of `step` was written (or is being written)."""
        self.unconfirmed.add(step)

    def confirm_before(self, step: int) -> None:
        """`step` passed the finite check: every checkpoint before it is confirmed; prune the old ones."""
        confirmed = {s for s in self.unconfirmed if s < step}
        if confirmed:
            self.unconfirmed -= confirmed
            self.prune()

    def prune(self) -> list[int]:
        """Delete confirmed checkpoints beyond the newest `keep` confirmed ones; returns the deleted steps."""
        confirmed = sorted(s for s in self.manager.all_steps() if s not in self.unconfirmed)
        doomed = confirmed[: -self.keep]
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
        self.manager.wait_until_finished()
        return self.manager.latest_step()


__all__ = ["Retention"]
