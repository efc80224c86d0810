"""Methods built and filled from other runs: the trainer side of `RunPart` declarations.

A method never reads another run. It declares what it takes:

- at registration, `register_method(name, reads=...)`: the runs whose *configs* its builder
  needs (a distillation teacher's, a BEiT tokenizer's); `build_method` here reads them, builds
  their methods and hands both to the builder;
- on the method, `frozen_runs()`: the runs whose *parameters* it takes; `load_frozen` (in
  `mmjax.train.loop`, next to `load_trained`) loads them on a fresh run and hands them to the
  method's pure `load_frozen(params, runs)`.
"""

from __future__ import annotations

from typing import Any

import ml_collections

from mmjax.methods import registry
from mmjax.methods.protocol import BuiltRun, RunPart
from mmjax.train import checkpoint


def read_run_config(part: RunPart) -> ml_collections.ConfigDict:
    """The stored config (`config.json`) of the run `part` names; a missing one is named by its field."""
    try:
        return ml_collections.ConfigDict(checkpoint.read_config(part.workdir))
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{part.field}={part.workdir!r} has no config.json: {part.hint}") from err


def build_method(config: Any) -> Any:
    """`mmjax.methods.build_method`, given the runs the method `reads`: each run's stored config and its
    method, built here the same way (so a teacher may itself read a tokenizer run)."""
    runs = {}
    for name, part in registry.method_reads(config).items():
        run_config = read_run_config(part)
        runs[name] = BuiltRun(run_config, build_method(run_config))
    return registry.build_method(config, runs)


__all__ = ["build_method", "read_run_config"]
