"""Device mesh and logical-axis sharding rules from the config."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mmjax.config import ConfigError

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")


def mesh_shape(sizes: dict[str, int], num_devices: int) -> tuple[int, ...]:
    """Axis sizes for `MESH_AXES`; one axis may be -1 ("whatever is left"). Raises `ConfigError`."""
    unknown = [k for k in sizes if k not in MESH_AXES]
    if unknown:
        raise ConfigError(f"unknown mesh axis {unknown}; expected some of {MESH_AXES}")
    shape = [int(sizes.get(axis, 1)) for axis in MESH_AXES]
    if shape.count(-1) > 1 or any(s == 0 or s < -1 for s in shape):
        raise ConfigError(f"mesh={dict(zip(MESH_AXES, shape, strict=True))}: sizes must be positive, at most one -1")
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape:
        if num_devices % known:
            raise ConfigError(f"mesh={sizes}: {num_devices} devices do not divide by {known}")
        shape[shape.index(-1)] = num_devices // known
    if math.prod(shape) != num_devices:
        raise ConfigError(f"mesh={sizes} needs {math.prod(shape)} devices, found {num_devices}")
    return tuple(shape)


def make_mesh(sizes: dict[str, int], devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A `(data, fsdp, tensor)` mesh over `devices` (default: all of them)."""
    devices = list(jax.devices() if devices is None else devices)
    try:
        shape = mesh_shape(dict(sizes), len(devices))
    except ValueError as err:
        if devices[0].platform != "cpu":
            raise
        hint = "on a CPU, XLA_FLAGS=--xla_force_host_platform_device_count=8 simulates 8 devices"
        raise ConfigError(f"{err} ({hint})") from None
    auto = (jax.sharding.AxisType.Auto,) * len(MESH_AXES)
    return jax.make_mesh(shape, MESH_AXES, devices=devices, axis_types=auto)


def logical_rules(rules: Sequence[Sequence[Any]]) -> tuple[tuple[str, Any], ...]:
    """Config rules `[[logical, mesh axis or list or None], ...]` as flax wants them."""
    out = []
    for rule in rules:
        name, target = rule
        if isinstance(target, list):
            target = tuple(target)
        out.append((name, target))
    return tuple(out)


def param_shardings(axes: Any, mesh: Mesh, rules: Sequence[Sequence[Any]]) -> Any:
    """Logical `PartitionSpec` tree -> `NamedSharding` tree on `mesh`."""
    return nn.logical_to_mesh_sharding(axes, mesh, logical_rules(rules))


def batch_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
    """Leading (batch) axis split over `data` and `fsdp`, the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES, *([None] * (ndim - 1))))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def global_batch(host_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """This process's numpy batch -> global `jax.Array`s sharded over (data, fsdp)."""
    return {
        key: jax.make_array_from_process_local_data(batch_sharding(mesh, np.ndim(value)), np.asarray(value))
        for key, value in host_batch.items()
    }
