"""Method registry: the trainer builds methods by name and never imports one directly.

A method built from other runs' configs (distillation builds its teacher from the teacher
run's config, BEiT its tokenizer) declares them at registration with `reads`: a function
`config -> {part: RunPart}`. Such a builder is called `builder(config, runs)` with
`runs = {part: BuiltRun(that run's config, its method)}`; `mmjax.train.build_method` reads
and builds them (a method never reads another run itself, so it never imports the trainer).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from mmjax.methods.protocol import RunPart

_BUILDERS: dict[str, Callable[..., Any]] = {}
_READS: dict[str, Callable[[Any], dict[str, RunPart]]] = {}
_PROTOCOLS: dict[str, tuple[str, ...]] = {}

# The evaluation protocols of an image encoder (`mmjax.evaluate.protocols`), the default.
IMAGE_PROTOCOLS = ("linear_probe", "tokenizer", "reconstruction_figure")


def register_method(
    name: str,
    *,
    reads: Callable[[Any], dict[str, RunPart]] | None = None,
    protocols: tuple[str, ...] = IMAGE_PROTOCOLS,
) -> Callable:
    """Decorator: `@register_method("mae")` on a function `config -> method`.

    `reads`: `config -> {part: RunPart}`, the runs whose configs the builder needs; the builder
    is then `(config, runs: {part: BuiltRun}) -> method`. `protocols`: the evaluations the
    method gets when `eval.protocols` is `()` (names registered in `mmjax.evaluate.protocols`;
    a protocol that does not apply to a run is skipped).
    """

    def wrap(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _BUILDERS:
            raise ValueError(f"method {name!r} is already registered")
        _BUILDERS[name] = builder
        _PROTOCOLS[name] = tuple(protocols)
        if reads is not None:
            _READS[name] = reads
        return builder

    return wrap


def method_protocols(name: str) -> tuple[str, ...]:
    """The evaluation protocols method `name` declared at registration (`IMAGE_PROTOCOLS` if unknown)."""
    return _PROTOCOLS.get(name, IMAGE_PROTOCOLS)


def available_methods() -> list[str]:
    return sorted(_BUILDERS)


def _name(config: Any) -> str:
    name = config.method if hasattr(config, "method") else config["method"]
    if name not in _BUILDERS:
        raise ValueError(f"config.method={name!r} is not a registered method; available: {available_methods()}")
    return name


def method_reads(config: Any) -> dict[str, RunPart]:
    """The runs whose configs `config.method`'s builder needs (`{}` for most methods)."""
    reads = _READS.get(_name(config))
    return {} if reads is None else dict(reads(config))


def build_method(config: Any, runs: dict[str, Any] | None = None) -> Any:
    """Build the method named by `config.method` from the whole experiment config.

    `runs`: `{part: BuiltRun}` of the runs the method `reads` (`method_reads`); needed only by
    methods that read other runs, and given by `mmjax.train.build_method`.
    """
    name = _name(config)
    if name not in _READS:
        return _BUILDERS[name](config)
    parts = method_reads(config)  # the method checks its fields (an empty workdir, ...) here
    missing = sorted(set(parts) - set(runs or {}))
    if missing:
        named = ", ".join(f"{parts[p].field}={parts[p].workdir!r}" for p in missing)
        raise ValueError(
            f"method {name!r} is built from the config of another run ({named}): build it with "
            f"mmjax.train.build_method, which reads it"
        )
    return _BUILDERS[name](config, {part: runs[part] for part in parts})


def method_module(name: str) -> Any:
    """The module that registered method `name`; by convention its `default_config()` is the method's config."""
    if name not in _BUILDERS:
        raise ValueError(f"config.method={name!r} is not a registered method; available: {available_methods()}")
    return sys.modules[_BUILDERS[name].__module__]
