"""A training workdir that a rerun cannot damage: one trainer at a time, and only a config that fits.

- `WorkdirLock`: an advisory lock (`flock`) on `workdir/.lock`, held by process 0 for the
  whole run and removed as it ends (with an empty `checkpoints/`, and the workdir itself if the
  run made it and wrote nothing). The operating system drops the lock when the process dies, so
  a crashed or killed run never leaves it stuck. Buckets (`gs://...`) have no locks; there it is skipped.
- `check_resumable`: the config of a rerun against the config stored with the checkpoint it
  would resume. Only runtime knobs (`RESUMABLE`) may differ; anything else (model, method,
  data, seed) would not fit the checkpoint or would change what it means, and is refused in
  one line naming the fields, before any file is written.
- `truncate_metrics`: `metrics.jsonl` cut back to the resumed step, so a killed run's extra rows
  are not repeated.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from typing import Any

from etils import epath

from mmjax.config import ConfigError
from mmjax.data.presets import data_defaults
from mmjax.files import write_text_atomic
from mmjax.methods import registry
from mmjax.train.defaults import library_defaults, runtime_defaults

# Config keys a resumed run may change: how long and how it trains, logs, checkpoints and
# evaluates, and how it is laid out on devices. Prefixes end in "."; others are exact keys.
RESUMABLE = (
    "train.",
    "eval.",
    "mesh.",
    "sharding.",
    "distributed.",
    "sample.",
    "model.attention_impl",
    "model.remat",
    "model.dtype",
    "data.num_threads",
)


class WorkdirBusyError(RuntimeError):
    """Another process holds the workdir's lock."""


class WorkdirLock:
    """Exclusive lock on a local workdir for the length of a run (`with WorkdirLock(dir): ...`)."""

    def __init__(self, workdir: str, enabled: bool = True):
        self.path = None if "://" in workdir or not enabled else os.path.join(os.path.abspath(workdir), ".lock")
        self._file = None

    def __enter__(self) -> WorkdirLock:
        if self.path is None:
            return self
        import fcntl  # noqa: PLC0415 - POSIX only

        folder = os.path.dirname(self.path)
        self._made_folder = not os.path.exists(folder)
        os.makedirs(folder, exist_ok=True)
        while True:
            handle = open(self.path, "a+")  # noqa: SIM115 - held open for the run
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise WorkdirBusyError(
                    f"workdir {folder} is in use by another run ({holder}); "
                    "wait for it to end or pass another --workdir"
                ) from None
            if _same_file(handle, self.path):
                break
            handle.close()  # the run before removed this lock file as it ended: lock the new one
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}")
            handle.flush()
        except OSError as err:  # a full disk: name the file
            with contextlib.suppress(OSError):  # closing flushes the same bytes again
                handle.close()
            raise OSError(err.errno, err.strerror, self.path) from None
        self._file = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is None:
            return
        folder = os.path.dirname(self.path)
        os.remove(self.path)  # while still held: a waiting run then locks a new file (`_same_file`)
        checkpoints = os.path.join(folder, "checkpoints")
        if os.path.isdir(checkpoints) and not os.listdir(checkpoints):  # a run that failed before its first save
            os.rmdir(checkpoints)
        if self._made_folder and not os.listdir(folder):  # a run that wrote nothing leaves nothing
            os.rmdir(folder)
        self._file.close()  # closing releases the lock
        self._file = None


def _same_file(handle: Any, path: str) -> bool:
    """Whether the open `handle` is still the file at `path` (not one removed since it was opened)."""
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


ABSENT = "<absent>"


def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dict -> `{"model.width": 32, ...}` (lists kept whole)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def resumable(key: str) -> bool:
    return any(key.startswith(p) if p.endswith(".") else key == p for p in RESUMABLE)


def config_changes(saved: dict, new: dict) -> tuple[list[str], list[str]]:
    """`(refused, allowed)`: `"key old -> new"` for each differing key of two resolved configs."""
    a, b = flatten(saved), flatten(new)
    method = saved.get("method")
    defaults = flatten(json.loads(json.dumps(runtime_defaults(method))))
    # A field of the saved run's method declared since (a `mask` or `target` section), at its default.
    if method in registry.available_methods() and hasattr(registry.method_module(method), "default_config"):
        defaults.update(flatten(json.loads(json.dumps(library_defaults(method).to_dict(), default=str))))
    # A `data` field of the saved run's kind declared since (`mmjax.data.presets`), at its default: what it read.
    declared = data_defaults(saved["data"]) if isinstance(saved.get("data"), dict) else {}
    defaults.update(flatten(json.loads(json.dumps({"data": declared}))))
    refused, allowed = [], []
    for key in sorted(set(a) | set(b)):
        old, value = a.get(key, ABSENT), b.get(key, ABSENT)
        if (old is ABSENT and value in ("", None)) or (value is ABSENT and old in ("", None)):
            continue  # a field added since with an unset default ("", None): the old behaviour, no change
        if old is ABSENT and key in defaults and value == defaults[key]:
            continue  # a knob declared since, at its default: what the old run did
        if old != value:
            (allowed if resumable(key) else refused).append(f"{key} {old!r} -> {value!r}")
    return refused, allowed


def check_resumable(saved: dict, new: dict, workdir: str, step: int) -> list[str]:
    """Raise `ConfigError` if `new` cannot resume checkpoint `step` trained with `saved`.

    Returns the allowed changes (`train.lr 0.001 -> 0.0001`, ...) for the run to report.
    """
    refused, allowed = config_changes(saved, new)
    if refused:
        shown = "; ".join(refused[:4]) + (f"; and {len(refused) - 4} more" if len(refused) > 4 else "")
        raise ConfigError(
            f"{workdir} holds a run trained with another config (checkpoint step {step}): {shown}. "
            "To continue that run, rerun with its settings (they are in its config.json); "
            "to train this config, pass another --workdir"
        )
    return allowed


def read_rows(path: epath.Path) -> list[dict[str, Any]]:
    """The whole rows of a JSON-lines file (a half-written last line is dropped)."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def truncate_metrics(workdir: str, step: int) -> None:
    """Keep only the rows of `workdir/metrics.jsonl` up to `step` (a resume from `step`)."""
    path = epath.Path(workdir) / "metrics.jsonl"
    if not path.exists():
        return
    rows = [r for r in read_rows(path) if isinstance(r, dict) and r.get("step", step + 1) <= step]
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))


__all__ = [
    "RESUMABLE",
    "WorkdirBusyError",
    "WorkdirLock",
    "check_resumable",
    "config_changes",
    "read_rows",
    "truncate_metrics",
]
