"""Experiment configs: loading experiment files, and turning sections into frozen dataclasses with clear errors."""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import difflib
import importlib.util
import math
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import ml_collections

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


def knob(
    default: Any,
    doc: str = "",
    *,
    choices: tuple | None = None,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """A declared config field: its one default, what it means, and the values it allows.

    Use it as the default of a field of a frozen dataclass that declares a config section:
    `steps: int = knob(1000, "optimizer updates", low=1)`. `section_config` turns the class
    into the section's `ConfigDict`, `dataclass_from_config` checks a section against it.
    `low` / `high` bound numbers (inclusive unless `low_open` / `high_open`); `choices` lists
    the allowed values.
    """
    meta = {"doc": doc, "choices": choices, "low": low, "high": high, "low_open": low_open, "high_open": high_open}
    return dataclasses.field(default=default, metadata=meta)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _members(hint: Any) -> tuple[Any, ...]:
    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def _single_type(hint: Any) -> type | None:
    """The one ml_collections field type of a hint (`int | None` -> int), or None for a union of several."""
    kinds = [typing.get_origin(m) or m for m in _members(hint) if m is not type(None)]
    if len(kinds) == 1 and kinds[0] in (int, float, bool, str, tuple):
        return kinds[0]
    return None


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def section_config(cls: type, **overrides: Any) -> ml_collections.ConfigDict:
    """The `ConfigDict` of a declared section: every field of `cls` with its default (or `overrides`).

    Fields of one type are typed references, so the command line can set them even when
    their value is None (`--config.train.weight_decay_end=0.4`). A field of several types
    (`image_size: int | tuple[int, int]`) is an untyped reference: it takes any of them, from
    Python or the command line (`--config.model.image_size=(24,40)`), and `dataclass_from_config`
    checks it against the declaration.
    """
    hints = _hints(cls)
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ConfigError(f"section_config({cls.__name__}): unknown field(s) {unknown}")
    values = {}
    for f in dataclasses.fields(cls):
        value = overrides.get(f.name, f.default)
        kind = _single_type(hints[f.name]) or (object if _is_union(hints[f.name]) else None)
        values[f.name] = ml_collections.FieldReference(value, field_type=kind) if kind else value
    return ml_collections.ConfigDict(values)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(m) for m in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a tuple of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
        return f"a tuple of {len(args)}"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


_INVALID = object()


def _coerce(value: Any, hint: Any) -> Any:
    """`value` as `hint` wants it (lists -> tuples, ints -> floats), or `_INVALID`."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for member in typing.get_args(hint):
            out = _coerce(value, member)
            if out is not _INVALID:
                return out
        return _INVALID
    if hint is Any:
        return value
    if hint is type(None):
        return value if value is None else _INVALID
    if hint is bool:
        return value if isinstance(value, bool) else _INVALID
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _INVALID
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return float(value) if ok else _INVALID
    if hint is str:
        return value if isinstance(value, str) else _INVALID
    if origin is tuple or hint is tuple:
        if not isinstance(value, list | tuple):
            return _INVALID
        args = typing.get_args(hint)
        if not args:
            return tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            items = [_coerce(v, args[0]) for v in value]
        elif len(args) == len(value):
            items = [_coerce(v, a) for v, a in zip(value, args, strict=True)]
        else:
            return _INVALID
        return _INVALID if any(i is _INVALID for i in items) else tuple(items)
    return value  # a type this checker does not know: the dataclass checks it


def _bounds(meta: Mapping[str, Any], integer: bool) -> str | None:
    low, high = meta.get("low"), meta.get("high")
    kind = "an integer" if integer else "a number"
    if low is not None and high is not None:
        return f"{kind} in {'(' if meta['low_open'] else '['}{low}, {high}{')' if meta['high_open'] else ']'}"
    if low is not None:
        return f"{kind} {'>' if meta['low_open'] else '>='} {low}"
    if high is not None:
        return f"{kind} {'<' if meta['high_open'] else '<='} {high}"
    return None


def check_field(where: str, value: Any, hint: Any, meta: Mapping[str, Any] | None = None) -> Any:
    """`value` of field `where` checked against its type and its `knob` limits; raises `ConfigError`."""
    meta = meta or {}
    out = _coerce(value, hint)
    if out is _INVALID:
        raise ConfigError(f"{where}={value!r}: expected {_describe(hint)}")
    choices = meta.get("choices")
    if choices is not None and out not in choices:
        raise ConfigError(f"{where}={value!r}: expected one of {tuple(choices)}")
    if isinstance(out, int | float) and not isinstance(out, bool):
        low, high = meta.get("low"), meta.get("high")
        too_low = low is not None and (out <= low if meta.get("low_open") else out < low)
        too_high = high is not None and (out >= high if meta.get("high_open") else out > high)
        if too_low or too_high:
            raise ConfigError(f"{where}={value!r}: expected {_bounds(meta, isinstance(out, int))}")
    return out


# Fields that moved: old dotted name -> where the setting is now (`moved_field`); an old config or flag
# naming one is told where, instead of the nearest spelling.
MOVED_FIELDS: dict[str, str] = {}


def moved_field(old: str, now: str) -> None:
    """Declare that field `old` (`"eval.probe_steps"`) moved to `now` (free text naming the new field)."""
    MOVED_FIELDS[old] = now


def unknown_field_error(where: str, names: list[str], known: list[str]) -> ConfigError:
    """`ConfigError` for misspelt fields of section `where`, naming the nearest valid one (or where a moved one is)."""
    prefix = f"{where}." if where else ""
    hints = []
    for name in names:
        close = difflib.get_close_matches(name, known, n=1)
        if f"{prefix}{name}" in MOVED_FIELDS:
            hints.append(f"{prefix}{name} (moved: {MOVED_FIELDS[prefix + name]})")
        else:
            hints.append(f"{prefix}{name}" + (f" (did you mean {prefix}{close[0]}?)" if close else ""))
    return ConfigError(f"unknown field {', '.join(hints)}; {where or 'the config'} has {', '.join(known)}")


def dataclass_from_config(cls: type[T], section: Any, where: str, **extra: Any) -> T:
    """Build the declared section `cls` from a config section, checking every field.

    Unknown fields are errors naming `where.field` and the nearest valid field; a value of the
    wrong type or outside its `knob` limits is an error naming the field, the value and what
    is allowed. Fields set to None fall back to the declared default; lists become tuples.
    """
    values = {**to_dict(section), **extra}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise unknown_field_error(where, unknown, list(fields))
    hints = _hints(cls)
    kwargs = {}
    for name, value in values.items():
        if value is None:
            continue
        kwargs[name] = check_field(f"{where}.{name}", value, hints[name], fields[name].metadata)
    return cls(**kwargs)


def complete_section(cls: type, section: Any, where: str) -> None:
    """Add to `section` (in place) the declared fields it lacks, with their defaults.

    A config saved by an older mmjax, or an experiment file written before a knob existed,
    then reads like one that has every knob; misspelt fields are left for the check.
    """
    for f in dataclasses.fields(cls):
        if f.name not in section:
            with section.unlocked() if hasattr(section, "unlocked") else contextlib.nullcontext():
                kind = _single_type(_hints(cls)[f.name])
                section[f.name] = ml_collections.FieldReference(f.default, field_type=kind) if kind else f.default


_VARIANT_RECORDS: list[dict[str, Any]] = []  # filled by `parse_arg` while `experiment_variants` runs


def parse_arg(arg: str | None, **defaults: Any) -> dict[str, Any]:
    """Experiment variants: `"size=base,runlocal=True"` -> dict over `defaults`, typed like them.

    Unknown keys are errors that list the known ones.
    """
    if _VARIANT_RECORDS:
        _VARIANT_RECORDS[-1].update(defaults)
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


def experiment_variants(path: str | os.PathLike) -> dict[str, Any]:
    """The variant keys `get_config` accepts, with their defaults: read by calling it once, with none."""
    seen: dict[str, Any] = {}
    _VARIANT_RECORDS.append(seen)
    try:
        load_experiment(path)
    finally:
        _VARIANT_RECORDS.pop()
    return seen


def experiment_description(path: str | os.PathLike, width: int = 160) -> str:
    """The first paragraph of an experiment file's docstring on one line, cut at `width` (read, not run)."""
    with open(path) as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
    text = " ".join(doc.strip().split("\n\n")[0].split())
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


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
