"""Non-finite values in training: found inside the jitted step, acted on by the host.

The step computes, next to its update, one int32: the index of the first parameter or
optimizer-state leaf holding a NaN or Inf after the update (-1 when none does). With the loss
and the gradient norm it decides whether the step is good. `train.on_nonfinite` says what a
bad step does: `stop` ends the run (the bad state is never saved), `skip` keeps the parameters
and moments of before the step and counts it, and stops after `train.max_consecutive_skips`
bad steps in a row.

A good step also vouches for the state it started from: its loss was computed from it. So a
checkpoint counts as confirmed only once a later step has passed (`mmjax.train.retention`).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from mmjax.train.optimizer import path_name

NONFINITE_LEAF = "nonfinite_leaf"  # metrics entry the host pops: first bad leaf index, -1 if none


class NonFiniteLossError(FloatingPointError):
    """Training met a NaN or Inf; the state of that step was not saved.

    Attributes:
      step: the step whose loss, gradient norm or updated state was not finite.
    """

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def _checked_leaves(tree: Any) -> list[jax.Array]:
    return [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]


def first_nonfinite_leaf(tree: Any) -> jax.Array:
    """int32 index (among the floating leaves of `tree`) of the first leaf with a NaN or Inf; -1 if none."""
    leaves = _checked_leaves(tree)
    if not leaves:
        return jnp.asarray(-1, jnp.int32)
    finite = jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])
    return jnp.where(jnp.all(finite), -1, jnp.argmin(finite)).astype(jnp.int32)


def checked_leaf_names(tree: Any) -> list[str]:
    """Names of the leaves `first_nonfinite_leaf` indexes, as `params/encoder/blocks/block_0/...`."""
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [path_name(path) for path, x in flat if jnp.issubdtype(x.dtype, jnp.inexact)]


def step_is_good(loss: jax.Array, grad_norm: jax.Array, bad_leaf: jax.Array) -> jax.Array:
    """Bool scalar: loss, gradient norm and every updated leaf finite."""
    return jnp.isfinite(loss) & jnp.isfinite(grad_norm) & (bad_leaf < 0)


def keep_if(good: jax.Array, new: Any, old: Any) -> Any:
    """`new` where `good`, else `old`, leaf by leaf (the skip of `on_nonfinite="skip"`)."""
    return jax.tree.map(lambda n, o: jnp.where(good, n, o), new, old)


class NonFiniteGuard:
    """Host side: reads each step's verdict and counts bad steps.

    Args:
      policy: `stop` or `skip` (`train.on_nonfinite`).
      max_consecutive: bad steps in a row that stop a `skip` run (`train.max_consecutive_skips`).
      leaf_names: `checked_leaf_names({"params": ..., "opt_state": ...})`.
    """

    def __init__(self, policy: str, max_consecutive: int, leaf_names: list[str]):
        self.policy, self.max_consecutive, self.leaf_names = policy, max_consecutive, leaf_names
        self.bad_run_start: int | None = None  # first step of the current run of bad steps

    def describe(self, step: int, values: dict[str, Any]) -> str:
        parts = [f"{k}={float(values[k]):.4g}" for k in ("loss", "grad_norm") if not math.isfinite(float(values[k]))]
        leaf = int(values[NONFINITE_LEAF])
        if leaf >= 0:
            parts.append(f"first non-finite leaf {self.leaf_names[leaf]}")
        return f"step {step}: " + ", ".join(parts or ["non-finite values"])

    def check(self, step: int, values: dict[str, Any]) -> tuple[bool, str | None]:
        """`(good, stop_reason)`: whether `step` was good, and why the run must stop (None: go on)."""
        good = math.isfinite(float(values["loss"])) and math.isfinite(float(values["grad_norm"]))
        good = good and int(values[NONFINITE_LEAF]) < 0
        if good:
            self.bad_run_start = None
            return True, None
        if self.bad_run_start is None:
            self.bad_run_start = step
        what = self.describe(step, values)
        if self.policy == "stop":
            return False, f"{what} (train.on_nonfinite=stop)"
        in_a_row = step - self.bad_run_start + 1
        if in_a_row >= self.max_consecutive:
            return (
                False,
                f"{what}; {in_a_row} updates in a row skipped (train.max_consecutive_skips={self.max_consecutive})",
            )
        return False, None


__all__ = [
    "NONFINITE_LEAF",
    "NonFiniteLossError",
    "NonFiniteGuard",
    "checked_leaf_names",
    "first_nonfinite_leaf",
    "keep_if",
    "step_is_good",
]
