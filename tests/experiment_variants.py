"""Experiment files and the variants their docstrings document: what `tests/test_experiments.py` and
`tests/test_mask_reachability.py` iterate over.

`experiment_files` finds every file in `experiments/` (a new one is covered without editing a test);
`documented_variants` reads a module docstring's "Variants" text; `variant_cases` turns it into one
`Case` per documented value, checked against the keys `get_config` really accepts (`accepted_variants`).
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib
import re
from typing import Any

from mmjax import cli
from mmjax import config as mmjax_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"


def experiment_files() -> list[pathlib.Path]:
    """Every experiment file (a new one is covered without editing the tests)."""
    return cli.experiment_files(EXPERIMENTS)


def accepted_variants(path: pathlib.Path) -> dict[str, Any]:
    """The keys (with defaults) `get_config` hands to `parse_arg`: read by calling it once."""
    return mmjax_config.experiment_variants(path)


def module_docstring(path: pathlib.Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text())) or ""


_INLINE = re.compile(r"`([A-Za-z_]\w*)(?:=([^`]*))?`")
_BLOCK_ENTRY = re.compile(r"^ {2,}([A-Za-z_]\w*) {2,}(.*)$")


def _choices(text: str) -> tuple[str, ...] | None:
    """`a | b (note) | c, more` -> ("a", "b", "c"); None when the text lists no alternatives."""
    text = re.sub(r"\([^()]*\)", "", " ".join(text.split()))
    if "|" not in text:
        return None
    values = []
    for part in text.split("|"):
        match = re.match(r"\s*([\w.+-]+)", part)
        if match:
            values.append(match.group(1))
    return tuple(values)


def documented_variants(doc: str) -> dict[str, tuple[str, ...] | None]:
    """The variant keys of a module docstring's "Variants" text, each with its listed values (None: free).

    Two forms are read: inline, ``Variants: `steps=N`, `masking=random|time_frequency` ...`` (a bare
    `` `runlocal` `` is a flag), and a block, ``Variants (...):`` followed by lines ``  key   a | b``
    (continuation lines indented deeper; ``;  key: text`` starts another key on the same line).
    """
    start = re.search(r"(?:^|(?<=\s))Variants\b(?:\s*\([^)]*\))?\s*:", doc, re.MULTILINE)
    if start is None:
        return {}
    rest = doc[start.start() :]
    header, _, body = rest.partition("\n")
    found: dict[str, tuple[str, ...] | None] = {}
    if re.match(r"Variants\s*(\([^)]*\))?\s*:\s*$", header):  # a block of "  key  description" lines
        entries: list[list[str]] = []
        for line in body.splitlines():
            if not line.strip():
                break
            entry = _BLOCK_ENTRY.match(line)
            if entry and (not entries or len(line) - len(line.lstrip()) <= 2):
                entries.append([entry.group(1), entry.group(2)])
            elif entries:
                entries[-1][1] += " " + line.strip()
            else:
                break
        for key, text in entries:
            parts = re.split(r";\s+([A-Za-z_]\w*):\s*", text)  # "a | b;  path: where ...;  epochs: 300"
            found[key] = _choices(parts[0])
            for other, other_text in zip(parts[1::2], parts[2::2], strict=True):
                found[other] = _choices(other_text)
        return found
    # Inline: the paragraph that starts with "Variants"; a backtick span may cross a line break.
    paragraph = rest.split("\n\n", 1)[0]
    joined = re.sub(r"`[^`]*`", lambda m: re.sub(r"\s+", "", m.group(0)), paragraph)
    for key, value in _INLINE.findall(joined):
        if not value:
            found[key] = None
            continue
        found[key] = _choices(value.replace("|", " | ")) if "|" in value else None
    return found


@dataclasses.dataclass(frozen=True)
class Case:
    """One experiment file with one variant string."""

    path: pathlib.Path
    arg: str | None
    key: str | None = None  # the variant key this case sets (None: the defaults)
    changes_default: bool = False  # the value set differs from the key's default

    @property
    def id(self) -> str:
        return f"{self.path.stem}:{self.arg or 'default'}"


def _free_value(default: Any) -> Any:
    """A value other than the default for a key whose documentation lists no alternatives."""
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return max(1, default // 2)
    if isinstance(default, float):
        return default / 2
    if not default or "/" in default:  # a path: resolving does not read it
        return f"{default.rstrip('/')}-variant" if default else "/tmp/mmjax-experiment-variant"
    return default  # a name with no documented alternatives (`selection=...`): the default, spelled out


def variant_cases(path: pathlib.Path) -> list[Case]:
    """The defaults, then each documented key set to each of its listed values (one key at a time;
    a key with no listed values, such as `steps=N` or `path=...`, once to some other value)."""
    cases = [Case(path, None)]
    try:
        accepted = accepted_variants(path)
    except Exception:  # noqa: BLE001  (a file that does not resolve fails its tests, with the message)
        return cases
    for key, values in documented_variants(module_docstring(path)).items():
        if key not in accepted:
            continue  # reported by the documentation test
        default = accepted[key]
        if values is None:
            value = _free_value(default)
            arg = key if value is True else f"{key}={str(value).lower() if isinstance(value, bool) else value}"
            cases.append(Case(path, arg, key, value != default))
        else:
            cases.extend(Case(path, f"{key}={v}", key, True) for v in values if str(v) != str(default))
    return cases
