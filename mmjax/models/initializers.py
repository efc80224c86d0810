"""Parameter initializers (MAE's choices) with logical axis names for sharding."""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Initializer = jax.nn.initializers.Initializer


def with_axes(init: Initializer, axes: Sequence[str | None]) -> Initializer:
    """Attach logical axis names (`embed`, `mlp`, `heads`, `kv`, ...) to an initializer."""
    return nn.with_logical_partitioning(init, tuple(axes))


def xavier_uniform_fused(num_fused: int) -> Initializer:
    """Xavier-uniform for one slice of a fused projection `[D_in, D_out]`.

    MAE (timm) projects q, k and v with one `Linear(D, 3D)` initialised as a whole, so
    each slice gets the bound `sqrt(6 / (D_in + num_fused * D_out))`.
    """

    def init(key, shape, dtype=jnp.float32):
        fan_in = shape[0]
        fan_out = math.prod(shape[1:]) * num_fused
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return jax.random.uniform(key, shape, dtype, -limit, limit)

    return init


def constant(value) -> Initializer:
    """Initialise to a fixed array (e.g. a sin-cos table for a learned embedding)."""

    def init(key, shape, dtype=jnp.float32):
        del key
        return jnp.broadcast_to(jnp.asarray(value, dtype), shape)

    return init


xavier_uniform = jax.nn.initializers.xavier_uniform
zeros = jax.nn.initializers.zeros
ones = jax.nn.initializers.ones
normal = jax.nn.initializers.normal
