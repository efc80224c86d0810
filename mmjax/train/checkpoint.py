"""Orbax checkpoints: train state, data-iterator state and the resolved config, saved together.

`workdir/checkpoints/<step>/` holds `state` (the `TrainState`), `data` (one grain iterator
state per process, `process_<i>-of-<n>.json`) and `config` (the config the state was trained
with). A save is atomic (written to a temporary folder, then renamed), so a kill mid-save
leaves the earlier checkpoints whole. orbax never deletes a checkpoint here: what is kept is
decided by `mmjax.train.retention`. A checkpoint that cannot be used is moved aside to
`workdir/rejected_checkpoints/`, never deleted.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from orbax.checkpoint._src.metadata import array_metadata_store as array_metadata_store_lib

from mmjax.config import ConfigError
from mmjax.evaluate.sections import upgrade_saved_eval
from mmjax.files import write_text_atomic
from mmjax.train import distributed

T = TypeVar("T")
REJECTED_DIR = "rejected_checkpoints"


class CheckpointRestoreError(RuntimeError):
    """No checkpoint of a workdir could be restored; none was moved."""


class InterruptedSavesError(RuntimeError):
    """A workdir holds only unfinished saves: starting again from step 0 would discard them unasked."""


TMP_SUFFIX = ".orbax-checkpoint-tmp"  # what orbax appends to a step folder until its save is committed


def _root(workdir: str) -> epath.Path:
    return epath.Path(workdir if "://" in workdir else os.path.abspath(workdir))


def interrupted_saves(workdir: str) -> tuple[list[int], list[int]]:
    """`(finished steps, steps of unfinished saves)` on disk, read before a writing manager opens
    the directory (it removes the unfinished ones)."""
    folder = _root(workdir) / "checkpoints"
    names = [p.name for p in folder.iterdir()] if folder.exists() else []
    finished = sorted(int(n) for n in names if n.isdigit())
    unfinished = sorted({int(m.group(1)) for n in names if (m := re.fullmatch(rf"(\d+){re.escape(TMP_SUFFIX)}.*", n))})
    return finished, unfinished


def check_restartable(workdir: str, restart: bool) -> list[int]:
    """The steps of unfinished saves in `workdir`; raises `InterruptedSavesError` when they are all
    it holds and `restart` is False (a fresh start would silently throw the run away)."""
    finished, unfinished = interrupted_saves(workdir)
    if unfinished and not finished and not restart:
        raise InterruptedSavesError(
            f"{_root(workdir) / 'checkpoints'} holds no finished checkpoint, only the unfinished save of step "
            f"{', '.join(map(str, unfinished))} (the run was killed while saving): nothing can be resumed. "
            "Pass --restart to train again from step 0, which removes it"
        )
    return unfinished


def checkpoint_manager(workdir: str, async_save: bool = True, read_only: bool = False) -> ocp.CheckpointManager:
    """A manager for `workdir/checkpoints` that keeps everything it saves (retention is ours).

    Saves run in the background (`async_save`); leftover temporary folders of a killed save are
    removed when a writing manager opens the directory.
    """
    _write_each_replicated_array_once()
    options = ocp.CheckpointManagerOptions(
        max_to_keep=None,
        enable_async_checkpointing=async_save,
        create=not read_only,
        read_only=read_only,
        cleanup_tmp_directories=not read_only,
    )
    return ocp.CheckpointManager(
        _root(workdir) / "checkpoints", options=options, item_names=("state", "data", "config")
    )


def _write_each_replicated_array_once() -> None:
    """In one process, save a replicated array from one device rather than a slice from each replica.

    Orbax's replica-parallel saving (its default except on GPU) splits every replicated array into
    one slice per replica so that several hosts share the writing. Within one process the same
    process writes every slice, and each slice is a device op: with 8 CPU devices, a state of 180
    small arrays took 17.7 s to save the first time (the slice ops compile) and 1.5 s afterwards,
    against 0.6 s and 0.5 s written once (`python benchmarks/checkpoint_save.py`). Several processes
    keep orbax's default.
    """
    parallel = None if jax.process_count() > 1 else False  # None: orbax's default
    if _REPLICA_PARALLEL.get("registered", "never") == parallel:
        return
    handler = ocp.type_handlers.ArrayHandler(
        use_replica_parallel=parallel, array_metadata_store=array_metadata_store_lib.Store()
    )
    with quiet_reads():  # orbax warns of every override
        ocp.type_handlers.register_type_handler(jax.Array, handler, override=True)
    _REPLICA_PARALLEL["registered"] = parallel


_REPLICA_PARALLEL: dict[str, bool | None] = {}


@contextlib.contextmanager
def quiet_reads() -> Iterator[None]:
    """Inside, orbax's notes on reading a finished run stay off the console ("Given directory is read
    only", "setting save_interval_steps=0", "Metadata file does not exist"); errors still show."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        logger.setLevel(level)


def open_for_reading(workdir: str, tries: int = 5) -> ocp.CheckpointManager:
    """A read-only manager of `workdir/checkpoints`. Listing stats every step folder, which a run
    still training may delete meanwhile (`train.keep_checkpoints`): then it lists again."""
    for left in reversed(range(tries)):
        try:
            with quiet_reads():
                return checkpoint_manager(workdir, async_save=False, read_only=True)
        except FileNotFoundError:
            if not left:
                raise
    raise AssertionError("unreachable")


def steps_on_disk(workdir: str) -> list[int]:
    """The finished checkpoints of `workdir`, listed now."""
    manager = open_for_reading(workdir)
    try:
        return list(manager.all_steps())
    finally:
        manager.close()


def save(manager: ocp.CheckpointManager, step: int, state: Any, data_iterator: Any, config: dict) -> None:
    """Save (asynchronously when enabled) at `step`; `data_iterator` None saves no data state.

    A failed write (this save's, or the previous one's in the background) is an `OSError` naming
    the checkpoints folder (a full disk says which disk).
    """
    args = {"state": ocp.args.StandardSave(state), "config": ocp.args.JsonSave(config)}
    if data_iterator is not None:
        args["data"] = grain.checkpoint.CheckpointSave(data_iterator)
    with _named_failures(manager):
        manager.save(step, args=ocp.args.Composite(**args))


def wait(manager: ocp.CheckpointManager) -> None:
    """Wait for the save in the background; its failure named as `save` names one."""
    with _named_failures(manager):
        manager.wait_until_finished()


@contextlib.contextmanager
def _named_failures(manager: ocp.CheckpointManager) -> Iterator[None]:
    try:
        yield
    except Exception as err:
        silence_abandoned_reads()  # the failed write leaves orbax's coroutines to end in tracebacks
        text = f"{err} {describe_failure(err)}"
        full = getattr(err, "errno", None) == errno.ENOSPC or "No space left on device" in text
        if full:  # tensorstore says so in a ValueError of several hundred characters
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(manager.directory)) from None
        if isinstance(err, OSError) and err.filename is None:
            raise OSError(err.errno, err.strerror or str(err), os.fspath(manager.directory)) from None
        raise


def restore(manager: ocp.CheckpointManager, step: int, abstract_state: Any, data_iterator: Any = None) -> Any:
    """Restore the state onto the shardings of `abstract_state` (and the iterator in place).

    A failure names the part that failed and its folder (`.../checkpoints/<step>/data: ...`).
    """
    folder = manager.directory / str(step)
    legacy = is_legacy(manager, step)
    target = {k: getattr(abstract_state, k) for k in LEGACY_STATE_FIELDS} if legacy else abstract_state
    parts = {"state": ocp.args.StandardRestore(target)}
    if data_iterator is not None:
        parts["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
    restored = {}
    for name, args in parts.items():
        try:
            restored[name] = manager.restore(step, args=ocp.args.Composite(**{name: args}))[name]
        except Exception as err:
            raise RuntimeError(f"{folder / name}: {describe_failure(err)}") from None
    if legacy:  # no update was skipped by a trainer that could not skip
        skipped = jax.device_put(np.zeros((), np.int32), abstract_state.skipped.sharding)
        return abstract_state.replace(**restored["state"], skipped=skipped)
    return restored["state"]


# The state fields of checkpoints written before the finite check (no `skipped` counter); their
# data-iterator position counts batches, where today's counts examples.
LEGACY_STATE_FIELDS = ("step", "params", "opt_state", "rng")


def is_legacy(manager: ocp.CheckpointManager, step: int) -> bool:
    """Whether checkpoint `step` was written by mmjax before the `skipped` counter (see `LEGACY_STATE_FIELDS`)."""
    try:
        fields = ocp.StandardCheckpointer().metadata(manager.directory / str(step) / "state").item_metadata
    except Exception:  # unreadable metadata: the restore itself reports the damage
        return False
    return fields is not None and "skipped" not in fields and set(LEGACY_STATE_FIELDS) <= set(fields)


def saved_config(manager: ocp.CheckpointManager, step: int) -> dict:
    """The config stored with checkpoint `step` (what its state was trained with; old `eval` knobs upgraded)."""
    return upgrade_saved_eval(manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"])


def data_process_count(workdir: str, step: int) -> int | None:
    """How many processes wrote checkpoint `step`'s data-iterator state (None: no data state saved)."""
    folder = _root(workdir) / "checkpoints" / str(step) / "data"
    if not folder.exists():
        return None
    counts = {int(m.group(1)) for p in folder.iterdir() if (m := re.fullmatch(r"process_\d+-of-(\d+)\.json", p.name))}
    return counts.pop() if len(counts) == 1 else None


def describe_failure(err: BaseException) -> str:
    """One line for a failed restore: the innermost cause, shortened."""
    while err.__cause__ is not None or (err.__context__ is not None and not err.__suppress_context__):
        err = err.__cause__ or err.__context__
    text = " ".join(str(err).split())
    if isinstance(err, RuntimeError) and "/checkpoints/" in text:  # already described by `restore`
        return text[:400]
    return f"{type(err).__name__}: {text[:300]}"


def move_aside(manager: ocp.CheckpointManager, workdir: str, step: int, reason: str) -> str:
    """Move checkpoint `step` to `workdir/rejected_checkpoints/<step>.<reason>` (process 0; all processes wait)."""
    manager.wait_until_finished()
    target_root = _root(workdir) / REJECTED_DIR
    target = target_root / f"{step}.{reason}"
    if distributed.is_chief():
        target_root.mkdir(parents=True, exist_ok=True)
        suffix = 1
        while target.exists():
            target, suffix = target_root / f"{step}.{reason}.{suffix}", suffix + 1
        (_root(workdir) / "checkpoints" / str(step)).rename(target)
    distributed.barrier(f"mmjax_move_aside_{step}")
    manager.reload()
    return os.fspath(target)


def restore_with_fallback(
    manager: ocp.CheckpointManager,
    workdir: str,
    attempt: Callable[[int], T],
    *,
    move_failed: bool = True,
    say: Callable[[str], None] = print,
) -> tuple[int, T] | None:
    """`(step, attempt(step))` for the newest checkpoint whose `attempt` succeeds on every process.

    Newer checkpoints that failed are reported in one line each (step, cause, file) and, with
    `move_failed`, moved aside; but only once an older one has restored: if every checkpoint
    fails, nothing is moved and `CheckpointRestoreError` names the newest one's cause. A
    `ConfigError` from `attempt` (a config that does not fit the checkpoint) is raised at once.
    Returns None when the workdir has no checkpoint.
    """
    steps = sorted(manager.all_steps(), reverse=True)
    newest = distributed.agree_on_int(steps[0] if steps else -1)
    if newest < 0:
        return None
    steps = [s for s in steps if s <= newest]
    failures: list[tuple[int, str]] = []
    for step in steps:
        try:
            result, error = attempt(step), None
        except ConfigError:
            raise
        except Exception as err:  # a damaged checkpoint: any failure to read it
            result, error = None, describe_failure(err)
            silence_abandoned_reads()
        if distributed.all_true(error is None):
            for failed, cause in failures:
                kept = (
                    f"moved to {move_aside(manager, workdir, failed, 'unreadable')}" if move_failed else "left in place"
                )
                say(f"checkpoint step {failed} could not be restored ({cause}); {kept}; using step {step}")
            return step, result
        failures.append((step, error or "failed on another process"))
    step, cause = failures[0]
    raise CheckpointRestoreError(f"no checkpoint of {workdir} could be restored; the newest, step {step}: {cause}")


def _from_abandoned_read(unraisable: Any) -> bool:
    """Whether an exception Python could not raise comes from the reads orbax left behind on a failure."""
    source = getattr(unraisable.object, "__qualname__", "") or repr(unraisable.object)
    code = getattr(unraisable.object, "cr_code", None)
    module = code.co_filename if code is not None else ""
    closed_loop = isinstance(unraisable.exc_value, RuntimeError) and "Event loop is closed" in str(unraisable.exc_value)
    return "orbax" in module or "orbax" in source or closed_loop


def silence_abandoned_reads() -> None:
    """Drop the noise of a failed restore: orbax leaves array reads running, which end later in
    hundreds of lines of `Exception ignored in: <coroutine ...>` / `RuntimeError: Event loop is
    closed`. Only those are dropped (every other unraisable exception still reaches the previous
    hook); the failure itself is reported by `restore_with_fallback` in one line.
    """
    previous = sys.unraisablehook
    if getattr(previous, "mmjax_filter", False):
        return

    def hook(unraisable: Any) -> None:
        if not _from_abandoned_read(unraisable):
            previous(unraisable)

    hook.mmjax_filter = True
    sys.unraisablehook = hook


def config_as_dict(config: Any) -> dict[str, Any]:
    """JSON-safe copy of a resolved config (tuples become lists): what `config.json` and checkpoints hold."""
    return json.loads(json.dumps(config.to_dict(), default=list))


def write_config(workdir: str, config: dict) -> None:
    """The resolved config as `workdir/config.json` (readable; what `eval` falls back to)."""
    write_text_atomic(epath.Path(workdir) / "config.json", json.dumps(config, indent=2, sort_keys=True))


def read_config(workdir: str) -> dict:
    """`workdir/config.json` as a dict (local path or bucket; old `eval` knobs upgraded)."""
    path = epath.Path(workdir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{workdir} has no config.json: is it a training workdir?")
    return upgrade_saved_eval(json.loads(path.read_text()))
