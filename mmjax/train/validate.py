"""Config-time checks of the runtime knobs (`train`, `eval`): a one-line error naming the first bad one.

Run before anything is compiled, read or written, so a typo in a number never costs a
compile, a workdir or a checkpoint. The method's own sections are checked by the method.
"""

from __future__ import annotations

import math
from typing import Any

from mmjax.config import ConfigError

NONFINITE_POLICIES = ("stop", "skip")


def _number(section: Any, where: str, name: str, *, integer: bool) -> float:
    value = section.get(name)
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise ConfigError(f"{where}.{name}={value!r}: expected {kind}")
    if not math.isfinite(value):
        raise ConfigError(f"{where}.{name}={value!r}: expected a finite number")
    return value


def _at_least(section: Any, where: str, name: str, low: float, *, integer: bool = True) -> None:
    value = _number(section, where, name, integer=integer)
    if value < low:
        raise ConfigError(f"{where}.{name}={value!r}: expected {'an integer' if integer else 'a number'} >= {low}")


def _positive(section: Any, where: str, name: str) -> None:
    value = _number(section, where, name, integer=False)
    if value <= 0:
        raise ConfigError(f"{where}.{name}={value!r}: expected a number > 0")


def _unit_interval(section: Any, where: str, name: str) -> None:
    value = _number(section, where, name, integer=False)
    if not 0 <= value < 1:
        raise ConfigError(f"{where}.{name}={value!r}: expected a number in [0, 1)")


def check_train_section(train: Any) -> None:
    """Every numeric `train` knob has a sensible value; raises `ConfigError` naming the first that does not."""
    for name in ("steps", "batch_size", "log_every", "checkpoint_every", "keep_checkpoints"):
        _at_least(train, "train", name, 1)
    _at_least(train, "train", "warmup_steps", 0)
    _positive(train, "train", "lr")
    _at_least(train, "train", "min_lr", 0, integer=False)
    if train.min_lr > train.lr:
        raise ConfigError(f"train.min_lr={train.min_lr!r}: expected at most train.lr={train.lr!r}")
    _at_least(train, "train", "weight_decay", 0, integer=False)
    if train.get("weight_decay_end") is not None:
        _at_least(train, "train", "weight_decay_end", 0, integer=False)
    _unit_interval(train, "train", "b1")
    _unit_interval(train, "train", "b2")
    _at_least(train, "train", "grad_clip", 0, integer=False)
    if train.on_nonfinite not in NONFINITE_POLICIES:
        raise ConfigError(f"train.on_nonfinite={train.on_nonfinite!r}: expected one of {NONFINITE_POLICIES}")
    _at_least(train, "train", "max_consecutive_skips", 1)


def check_eval_section(evaluation: Any) -> None:
    """The numeric `eval` knobs the end-of-run evaluation reads."""
    for name in ("batch_size", "probe_steps", "figure_examples"):
        if name in evaluation:
            _at_least(evaluation, "eval", name, 1)
    if "probe_l2" in evaluation:
        _at_least(evaluation, "eval", "probe_l2", 0, integer=False)


def check_runtime_config(config: Any) -> None:
    """`train` and `eval` of a resolved experiment config; raises `ConfigError` (a `ValueError`)."""
    if "train" not in config:
        raise ConfigError("the config has no train section; build it with mmjax.train.defaults.training_sections")
    check_train_section(config.train)
    if "eval" in config:
        check_eval_section(config.eval)


def check_batch_divides(batch_size: int, batch_devices: int, processes: int) -> None:
    """The global batch splits evenly over the processes and the mesh's batch axes (`data` x `fsdp`)."""
    if batch_size % processes:
        raise ConfigError(f"train.batch_size={batch_size}: expected a multiple of the {processes} processes")
    if batch_size % batch_devices:
        raise ConfigError(
            f"train.batch_size={batch_size}: expected a multiple of mesh data x fsdp = {batch_devices} devices"
        )


__all__ = ["NONFINITE_POLICIES", "check_batch_divides", "check_runtime_config", "check_train_section"]
