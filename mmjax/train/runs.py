"""Methods built and filled from other runs: the trainer side of `RunPart` declarations.

A method never reads another run. It declares what it takes:

- at registration, `register_method(name, reads=...)`: the runs whose *configs* its builder
  needs (a distillation teacher's, a BEiT tokenizer's); `build_method` here reads them, builds
  their methods and hands both to the builder;
- on the method, `frozen_runs()`: the runs whose *parameters* it takes; `load_frozen` (in
  `mmjax.train.loop`, next to `load_trained`) loads them on a fresh run and hands them to the
  method's pure `load_frozen(params, runs)`.

A run that read others keeps their configs in its own workdir (`READ_RUNS`, written when it
starts), and its checkpoints hold the parameters it took from them: it resumes, evaluates and
exports from its own workdir alone, after those runs' workdirs are gone.
"""

from __future__ import annotations

import json
from typing import Any

import ml_collections
from etils import epath

from mmjax.files import write_text_atomic
from mmjax.methods import registry
from mmjax.methods.protocol import BuiltRun, RunPart
from mmjax.train import checkpoint

READ_RUNS = "read_runs.json"
"""`{workdir of a run read: its config}`, in the workdir of the run that read them."""


def kept_run_configs(workdir: str | None) -> dict[str, dict]:
    """The configs of the runs `workdir`'s run read, as it kept them (`READ_RUNS`); {} when none."""
    path = epath.Path(workdir) / READ_RUNS if workdir else None
    if path is None or not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def read_run_config(part: RunPart, kept: dict[str, dict] | None = None) -> ml_collections.ConfigDict:
    """The stored config (`config.json`) of the run `part` names, else the copy in `kept`; a missing one
    is named by its field."""
    try:
        return ml_collections.ConfigDict(checkpoint.read_config(part.workdir))
    except FileNotFoundError as err:
        if kept and part.workdir in kept:
            return ml_collections.ConfigDict(kept[part.workdir])
        raise FileNotFoundError(f"{part.field}={part.workdir!r} has no config.json: {part.hint}") from err


def _read_runs(config: Any, kept: dict[str, dict]) -> dict[str, tuple[RunPart, ml_collections.ConfigDict]]:
    """`{name: (part, its config)}` for the runs `config`'s method reads."""
    return {name: (part, read_run_config(part, kept)) for name, part in registry.method_reads(config).items()}


def build_method(config: Any, workdir: str | None = None) -> Any:
    """`mmjax.methods.build_method`, given the runs the method `reads`: each run's stored config and its
    method, built here the same way (so a teacher may itself read a tokenizer run). With `workdir` (the
    run being built), a read run whose workdir is gone is built from the copy `workdir` kept."""
    kept = kept_run_configs(workdir)

    def build(config: Any) -> Any:
        runs = {name: BuiltRun(c, build(c)) for name, (_, c) in _read_runs(config, kept).items()}
        return registry.build_method(config, runs)

    return build(config)


def keep_run_configs(workdir: str, config: Any) -> None:
    """Write the configs of every run `config` reads, nested reads included, to `workdir/READ_RUNS`."""
    kept, found = kept_run_configs(workdir), {}

    def gather(config: Any) -> None:
        for part, run_config in _read_runs(config, kept).values():
            found[part.workdir] = checkpoint.config_as_dict(run_config)
            gather(run_config)

    gather(config)
    if found:
        write_text_atomic(epath.Path(workdir) / READ_RUNS, json.dumps(found, indent=2, sort_keys=True))


__all__ = ["READ_RUNS", "build_method", "keep_run_configs", "kept_run_configs", "read_run_config"]
