"""The method protocol the trainer relies on (DESIGN.md principle 3)."""

from __future__ import annotations

from typing import Any, Protocol

import jax

Params = Any
Batch = dict[str, jax.Array]


class Method(Protocol):
    """A masked-modeling method: a small bundle of pure functions over a params pytree."""

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        """Fresh float32 parameters for batches shaped like `batch`."""
        ...

    def loss(self, params: Params, batch: Batch, rng: jax.Array, train: bool = True) -> tuple[jax.Array, dict]:
        """Scalar float32 loss and a dict of scalar metrics."""
        ...

    def param_axes(self) -> Any:
        """A pytree like the params holding logical-axis `PartitionSpec`s."""
        ...
