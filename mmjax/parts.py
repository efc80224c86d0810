"""Named parts of a method (mask generators, targets, losses), chosen in the config by `kind`.

A registry (`Parts`) holds each part once: its name, the function, what it fits (token
layouts for masks, input kinds for targets, target values for losses) and the frozen
dataclass that declares its arguments as `knob`s. A method's config section for a part is
generated from the registry:

    mask:
      kind: random            # the method's paper default
      blockwise:              # one subsection per fitting kind that has arguments
        min_block: 16
        ...

so every argument of every kind is settable from the command line
(`--config.mask.kind=blockwise --config.mask.blockwise.min_block=4`), and `Parts.resolve`
checks a section against the same declarations: a kind that does not fit is a one-line
`ConfigError` naming `<section>.kind`, the value and the allowed kinds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import ml_collections

from mmjax.config import ConfigError, dataclass_from_config, section_config, to_dict, unknown_field_error


@dataclasses.dataclass(frozen=True)
class Part:
    """One registered part: `fn`, the things it `fits`, its argument declaration `args` (or None)."""

    name: str
    fn: Callable[..., Any]
    fits: tuple[str, ...]
    args: type | None = None
    doc: str = ""
    info: tuple[tuple[str, Any], ...] = ()  # registry-specific facts (e.g. a target's value kind)

    def fact(self, key: str, default: Any = None) -> Any:
        return dict(self.info).get(key, default)


@dataclasses.dataclass(frozen=True)
class Chosen:
    """A part picked by a config: the registered `part` and its checked `args` instance (or None)."""

    part: Part
    args: Any = None

    @property
    def name(self) -> str:
        return self.part.name


class Parts:
    """A registry of parts that a config section `<section>.kind` chooses from."""

    def __init__(self, section: str, what: str):
        self.section = section
        self.what = what
        self._parts: dict[str, Part] = {}

    def register(
        self, name: str, *, fits: tuple[str, ...], args: type | None = None, doc: str = "", **info: Any
    ) -> Callable[[Callable], Callable]:
        """Decorator: register `fn` under `name`, fitting `fits`, with argument declaration `args`."""

        def decorate(fn: Callable) -> Callable:
            if name in self._parts:
                raise ValueError(f"{self.what} {name!r} is registered twice")
            summary = doc or (fn.__doc__ or "").split("\n")[0]
            self._parts[name] = Part(name, fn, tuple(fits), args, summary, tuple(info.items()))
            return fn

        return decorate

    def __contains__(self, name: str) -> bool:
        return name in self._parts

    def __getitem__(self, name: str) -> Part:
        if name not in self._parts:
            raise ConfigError(f"{self.section}.kind={name!r}: expected one of {self.names()}")
        return self._parts[name]

    def parts(self) -> tuple[Part, ...]:
        return tuple(self._parts.values())

    def names(self, fits: str | None = None) -> tuple[str, ...]:
        """Registered names, in registration order; with `fits`, only those that fit it."""
        return tuple(n for n, p in self._parts.items() if fits is None or fits in p.fits)

    def choose(self, name: str, **args: Any) -> Chosen:
        """`Chosen` for `name`, its args at their declared defaults (or `args`)."""
        part = self[name]
        if part.args is None:
            if args:
                raise ConfigError(f"{self.section}.{name} takes no arguments, got {sorted(args)}")
            return Chosen(part)
        return Chosen(part, dataclass_from_config(part.args, args, f"{self.section}.{name}"))

    def section_config(
        self, default: str | None, fits: str, owned: tuple[str, ...] = (), **arg_overrides: dict
    ) -> ml_collections.ConfigDict:
        """The `<section>` ConfigDict: `kind` (= `default`) and one subsection per fitting kind with arguments.

        `arg_overrides` maps a kind to new defaults of its arguments (a method's own choice);
        `owned` kinds get no subsection: the method supplies their arguments from its own
        knobs (SimMIM's `simmim.mask_patch` is the `cells` kind's cell side).
        """
        values: dict[str, Any] = {"kind": ml_collections.FieldReference(default, field_type=str)}
        for name in self.names(fits):
            part = self._parts[name]
            if part.args is not None and name not in owned:
                values[name] = section_config(part.args, **arg_overrides.get(name, {}))
        return ml_collections.ConfigDict(values)

    def resolve(self, section: Any, fits: str, default: str, owned: dict[str, Any] | None = None) -> Chosen:
        """Check `section` (may be None: an older config without it) and return the chosen part.

        Every present argument subsection is checked, not only the chosen kind's, so a typo
        in another kind's arguments is not silently ignored. `owned` maps kinds whose
        arguments the method supplies (see `section_config`) to those arguments.
        """
        owned = owned or {}
        values = to_dict(section) if section is not None else {}
        allowed = self.names(fits)
        withargs = [n for n in allowed if self._parts[n].args is not None and n not in owned]
        unknown = sorted(set(values) - {"kind", *withargs})
        if unknown:
            misfits = [n for n in unknown if n in self._parts]
            if misfits:
                raise ConfigError(
                    f"{self.section}.{misfits[0]}: {self.what} {misfits[0]!r} does not fit {fits}; "
                    f"{self.section}.kind allows {allowed}"
                )
            raise unknown_field_error(self.section, unknown, ["kind", *withargs])
        kind = values.get("kind") or default
        if not isinstance(kind, str) or kind not in allowed:
            where = f" (it fits {', '.join(self._parts[kind].fits)})" if isinstance(kind, str) and kind in self else ""
            raise ConfigError(f"{self.section}.kind={kind!r}{where}: expected one of {allowed} for {fits}")
        chosen = Chosen(self._parts[kind], owned[kind]) if kind in owned else None
        for name in withargs:
            args = dataclass_from_config(self._parts[name].args, values.get(name) or {}, f"{self.section}.{name}")
            if name == kind:
                chosen = Chosen(self._parts[name], args)
        return chosen or Chosen(self._parts[kind])


__all__ = ["Chosen", "Part", "Parts"]
