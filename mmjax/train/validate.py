"""Config-time checks of the runtime knobs (`train`, `eval`): a one-line error naming the first bad one.

Run before anything is compiled, read or written, so a typo in a number never costs a
compile, a workdir or a checkpoint. The method's own sections are checked by the method.
"""

from __future__ import annotations

import json
from typing import Any

from mmjax.config import ConfigError, check_field, complete_section, dataclass_from_config
from mmjax.data.kinds import data_kind
from mmjax.evaluate.protocols import check_eval_section
from mmjax.train.defaults import NONFINITE_POLICIES, RUNTIME_SECTIONS, TrainSection, library_defaults
from mmjax.train.runs import build_method
from mmjax.train.workdir import ABSENT, flatten


def check_train_section(train: Any) -> TrainSection:
    """Every `train` knob has a sensible value; raises `ConfigError` naming the first that does not."""
    return dataclass_from_config(TrainSection, train, "train")


def check_runtime_config(config: Any) -> None:
    """`seed` and the runtime sections of a resolved experiment config; raises `ConfigError` (a `ValueError`).

    A runtime section that lacks a declared field (an experiment file or a saved config from
    before the field existed) gets it with its default first, in place.
    """
    if "train" not in config:
        raise ConfigError("the config has no train section; build it with mmjax.train.defaults.training_sections")
    if "seed" not in config:
        raise ConfigError("the config has no seed; build it with mmjax.train.defaults.training_sections")
    check_field("seed", config.seed, int)
    for name, declaration in RUNTIME_SECTIONS.items():
        if name == "eval" and name in config:
            check_eval_section(config.eval)  # with the sections of its protocols
        elif name in config:
            complete_section(declaration, config[name], name)
            dataclass_from_config(declaration, config[name], name)


def check_config(config: Any) -> Any:
    """Everything `train` checks before it compiles: the runtime sections, the method's, the data's.

    Returns the built method. Raises `ConfigError` (or the `ValueError` of the part that
    refused) naming the first bad field.
    """
    check_runtime_config(config)
    method = build_method(config)
    data_kind(config.data).batch_spec(config.data, config.train.batch_size)
    return method


def config_differences(base: Any, config: Any) -> list[str]:
    """`"key: old -> new"` for each flattened field of `config` that differs from (or is absent in) `base`."""
    a, b = flatten(_plain(base)), flatten(_plain(config))
    return [
        f"{k}: {a.get(k, ABSENT)!r} -> {b.get(k, ABSENT)!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k, ABSENT) != b.get(k, ABSENT)
    ]


def config_fields(config: Any) -> dict[str, Any]:
    """`{"model.width": 32, ...}`: every field of a config, flattened, in key order (JSON values)."""
    return dict(sorted(flatten(_plain(config)).items()))


def _plain(config: Any) -> dict:
    return json.loads(json.dumps(config.to_dict() if hasattr(config, "to_dict") else dict(config), default=str))


def check_batch_divides(batch_size: int, batch_devices: int, processes: int) -> None:
    """The global batch splits evenly over the processes and the mesh's batch axes (`data` x `fsdp`)."""
    if batch_size % processes:
        raise ConfigError(f"train.batch_size={batch_size}: expected a multiple of the {processes} processes")
    if batch_size % batch_devices:
        raise ConfigError(
            f"train.batch_size={batch_size}: expected a multiple of mesh data x fsdp = {batch_devices} devices"
        )


__all__ = [
    "NONFINITE_POLICIES",
    "check_batch_divides",
    "check_eval_section",
    "check_runtime_config",
    "check_train_section",
    "library_defaults",
]
