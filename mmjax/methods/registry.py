"""Method registry: the trainer builds methods by name and never imports one directly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_BUILDERS: dict[str, Callable[[Any], Any]] = {}


def register_method(name: str) -> Callable:
    """Decorator: `@register_method("mae")` on a function `config -> method`."""

    def wrap(builder: Callable[[Any], Any]) -> Callable[[Any], Any]:
        if name in _BUILDERS:
            raise ValueError(f"method {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return wrap


def available_methods() -> list[str]:
    return sorted(_BUILDERS)


def build_method(config: Any) -> Any:
    """Build the method named by `config.method` from the whole experiment config."""
    name = config.method if hasattr(config, "method") else config["method"]
    if name not in _BUILDERS:
        raise ValueError(f"config.method={name!r} is not a registered method; available: {available_methods()}")
    return _BUILDERS[name](config)
