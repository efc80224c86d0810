"""Multi-process start-up: `jax.distributed.initialize` from the config, the environment or the cluster.

One process runs per host (TPU VM worker, GPU node, or a local process in tests). Where the
facts come from, first match wins:

1. explicit values: `config.distributed.coordinator` / `num_processes` / `process_id`, each
   overridable by the environment variables `MMJAX_COORDINATOR` (`host:port`),
   `MMJAX_NUM_PROCESSES` and `MMJAX_PROCESS_ID`;
2. `config.distributed.enabled=True` (or `MMJAX_DISTRIBUTED=1`) with none of them: JAX
   auto-detects the cluster (TPU pod metadata, SLURM, Open MPI, ...).

With none of this configured, nothing is initialized and the run is single-process.
On CPU the cross-process collectives use gloo.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

ENV_COORDINATOR = "MMJAX_COORDINATOR"
ENV_NUM_PROCESSES = "MMJAX_NUM_PROCESSES"
ENV_PROCESS_ID = "MMJAX_PROCESS_ID"
ENV_ENABLED = "MMJAX_DISTRIBUTED"


def _setting(section: Any, field: str, env: str, default: Any) -> Any:
    if env in os.environ and os.environ[env] != "":
        return os.environ[env]
    value = None if section is None else section.get(field)
    if (
        value not in (None, "")
        and not (field == "num_processes" and value == 0)
        and not (field == "process_id" and value == -1)
    ):
        return value
    return default


def _as_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r}: expected an integer") from None


def resolve(section: Any = None) -> dict[str, Any] | None:
    """The keyword arguments for `jax.distributed.initialize`, or None for a single-process run.

    Args:
      section: `config.distributed` (fields `enabled`, `coordinator`, `num_processes`,
        `process_id`; all optional) or None; environment variables override it.
    """
    coordinator = _setting(section, "coordinator", ENV_COORDINATOR, None)
    num = _as_int(_setting(section, "num_processes", ENV_NUM_PROCESSES, None), "distributed.num_processes")
    pid = _as_int(_setting(section, "process_id", ENV_PROCESS_ID, None), "distributed.process_id")
    enabled = str(_setting(section, "enabled", ENV_ENABLED, False)).lower() in ("1", "true", "yes")
    if coordinator is None and num is None and pid is None:
        return {} if enabled else None
    if num is not None and num < 1:
        raise ValueError(f"distributed.num_processes={num}: expected at least 1")
    if pid is not None and num is not None and not 0 <= pid < num:
        raise ValueError(f"distributed.process_id={pid}: expected 0 <= process_id < num_processes={num}")
    if coordinator is not None and ":" not in str(coordinator):
        raise ValueError(f"distributed.coordinator={coordinator!r}: expected 'host:port'")
    kwargs = {"coordinator_address": coordinator, "num_processes": num, "process_id": pid}
    return {k: v for k, v in kwargs.items() if v is not None}


def is_initialized() -> bool:
    """True once `jax.distributed.initialize` has run in this process."""
    from jax._src import distributed as _distributed  # noqa: PLC0415 - no public query exists

    return _distributed.global_state.client is not None


def initialize(section: Any = None) -> bool:
    """Start JAX's multi-process runtime if configured; returns whether it is running.

    Must run before anything touches a device. Calling it again is a no-op. On CPU it
    selects gloo for cross-process collectives.
    """
    if is_initialized():
        return True
    kwargs = resolve(section)
    if kwargs is None:
        return False
    platforms = os.environ.get("JAX_PLATFORMS", "") or str(jax.config.jax_platforms or "")
    if platforms == "" or "cpu" in platforms.split(","):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(**kwargs)
    return True


def agree_on_int(value: int) -> int:
    """Process 0's `value` on every process (e.g. the resume step read from the filesystem)."""
    if jax.process_count() == 1:
        return value
    from jax.experimental import multihost_utils  # noqa: PLC0415

    return int(multihost_utils.broadcast_one_to_all(np.asarray(value, np.int32)))


def is_chief() -> bool:
    """Process 0: the one that writes the workdir's shared files and the console."""
    return jax.process_index() == 0


def all_true(flag: bool) -> bool:
    """Whether `flag` holds on every process (a collective with several processes)."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils  # noqa: PLC0415

    flags = multihost_utils.process_allgather(np.asarray(int(bool(flag)), np.int32))
    return bool(np.all(flags))


def barrier(name: str) -> None:
    """Wait until every process gets here (a no-op in a single process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils  # noqa: PLC0415

        multihost_utils.sync_global_devices(name)


__all__ = ["agree_on_int", "all_true", "barrier", "initialize", "is_chief", "is_initialized", "resolve"]
