"""The train state pytree."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax


@flax.struct.dataclass
class TrainState:
    """Everything the update step reads and writes.

    Attributes:
      step: int32 scalar, number of updates applied.
      params: the method's parameter pytree.
      opt_state: optax state.
      rng: uint32 key data of the run's base key; step keys are `fold_in(base, step)`.
      skipped: int32 scalar, updates skipped for non-finite values (`train.on_nonfinite="skip"`).
    """

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array
    skipped: jax.Array

    def step_key(self) -> jax.Array:
        """This step's key, then split per purpose by the method."""
        return jax.random.fold_in(jax.random.wrap_key_data(self.rng), self.step)
