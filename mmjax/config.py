"""Experiment configs: loading experiment files, and turning sections into frozen dataclasses with clear errors."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config field has a value that cannot work; the message names the field, the value and what was expected."""


def to_dict(section: Any) -> dict[str, Any]:
    """A ConfigDict (or any mapping) as a plain dict."""
    if hasattr(section, "to_dict"):
        return section.to_dict()
    if isinstance(section, Mapping):
        return dict(section)
    raise TypeError(f"expected a ConfigDict or mapping, got {type(section).__name__}")


def dataclass_from_config(cls: type[T], section: Any, where: str, **extra: Any) -> T:
    """Build `cls` from a config section; unknown fields are errors naming `where.field`.

    Fields set to None fall back to the dataclass default; lists become tuples.
    """
    values = {**to_dict(section), **extra}
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown field(s) {', '.join(f'{where}.{k}' for k in unknown)}; expected some of {sorted(known)}"
        )
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if v is not None}
    return cls(**kwargs)


def parse_arg(arg: str | None, **defaults: Any) -> dict[str, Any]:
    """Experiment variants: `"size=base,runlocal=True"` -> dict over `defaults`, typed like them.

    Unknown keys are errors that list the known ones.
    """
    values = dict(defaults)
    for item in filter(None, (arg or "").split(",")):
        key, sep, raw = item.partition("=")
        if key not in defaults:
            raise ConfigError(f"unknown experiment variant key {key!r} in {arg!r}; known: {sorted(defaults)}")
        default = defaults[key]
        if not sep and isinstance(default, bool):
            values[key] = True
        elif isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ConfigError(f"variant {key}={raw!r}: expected true or false")
            values[key] = raw.lower() in ("true", "1")
        elif isinstance(default, int | float):
            kind = type(default)
            try:
                values[key] = kind(raw)
            except ValueError:
                raise ConfigError(
                    f"variant {key}={raw!r}: expected {'an integer' if kind is int else 'a number'}"
                ) from None
        else:
            values[key] = raw
    return values


def load_experiment(path: str | os.PathLike, arg: str | None = None) -> Any:
    """`get_config(arg)` of an experiment file (`experiments/mae_mnist.py`), without the command line."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"experiment file {path!r} does not exist")
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"experiment file {path!r} has no get_config(arg) function")
    return module.get_config(arg)
