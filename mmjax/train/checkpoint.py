"""Orbax checkpoints: train state, data-iterator state and the resolved config, saved together."""

from __future__ import annotations

import json
import os
from typing import Any

import grain
import orbax.checkpoint as ocp
from etils import epath


def checkpoint_manager(workdir: str, keep: int, async_save: bool = True) -> ocp.CheckpointManager:
    """A manager for `workdir/checkpoints` keeping the last `keep` steps.

    Saves run in the background (`async_save`); a save is atomic (written to a temporary
    folder and renamed), so an interrupted save leaves the previous checkpoint intact.
    """
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        enable_async_checkpointing=async_save,
        create=True,
    )
    return ocp.CheckpointManager(
        epath.Path(workdir if "://" in workdir else os.path.abspath(workdir)) / "checkpoints",
        options=options,
        item_names=("state", "data", "config"),
    )


def save(manager: ocp.CheckpointManager, step: int, state: Any, data_iterator: Any, config: dict) -> None:
    """Save (asynchronously when enabled) at `step`; `data_iterator` None saves no data state."""
    args = {"state": ocp.args.StandardSave(state), "config": ocp.args.JsonSave(config)}
    if data_iterator is not None:
        args["data"] = grain.checkpoint.CheckpointSave(data_iterator)
    manager.save(step, args=ocp.args.Composite(**args))


def restore(manager: ocp.CheckpointManager, step: int, abstract_state: Any, data_iterator: Any = None) -> Any:
    """Restore the state onto the shardings of `abstract_state` (and the iterator in place)."""
    args = {"state": ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None:
        args["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
    return manager.restore(step, args=ocp.args.Composite(**args))["state"]


def write_config(workdir: str, config: dict) -> None:
    """The resolved config as `workdir/config.json` (readable, and what `eval` reloads).

    `workdir` may be a bucket (`gs://...`): paths go through `etils.epath`, as orbax's do.
    """
    folder = epath.Path(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(config, indent=2, sort_keys=True)
    if folder.as_posix().startswith("/"):  # local: write then rename, so readers never see half a file
        tmp = folder / "config.json.tmp"
        tmp.write_text(text)
        os.replace(tmp, folder / "config.json")
    else:  # object stores write whole objects
        (folder / "config.json").write_text(text)


def read_config(workdir: str) -> dict:
    """`workdir/config.json` as a dict (local path or bucket)."""
    return json.loads((epath.Path(workdir) / "config.json").read_text())
