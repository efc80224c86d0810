"""Orbax checkpoints: train state, data-iterator state and the resolved config, saved together."""

from __future__ import annotations

import json
import os
from typing import Any

import grain
import orbax.checkpoint as ocp


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
        os.path.join(os.path.abspath(workdir), "checkpoints"),
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
    """The resolved config as `workdir/config.json` (readable, and what `eval` reloads)."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "config.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
