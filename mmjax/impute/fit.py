"""A small jitted training loop for ReMasker on one in-memory table.

The whole table lives on the device; every step draws a minibatch of rows (a fresh
permutation per epoch) and a fresh re-mask. All steps run in one `lax.scan`, so a fit is
one compilation plus a device loop, seconds on CPU for tables of a few hundred rows.
`fit_ensemble` trains K such models at once (vmapped) for `impute_ensemble` to average.
Both imputers can also average several re-masked views per model (`passes`, test-time
augmentation: `ReMasker.impute_averaged`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mmjax.methods.remasker import ReMasker
from mmjax.train.optimizer import make_optimizer


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """Training recipe: `epochs` passes over the rows in minibatches of `batch_size`,
    AdamW (b1 0.9, b2 0.95) with linear warmup over `warmup_epochs` then cosine to 0."""

    epochs: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 20
    grad_clip: float = 1.0

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


def minibatch_rows(num_rows: int, batch_size: int, epochs: int, seed: int | Sequence[int]) -> np.ndarray:
    """int `[steps, B]` row indices: each epoch a fresh permutation cut into `ceil(N / B)` batches.

    `B = min(batch_size, num_rows)`; the last batch of an epoch is topped up from the
    epoch's first rows so every step has the same shape.
    """
    size = min(batch_size, num_rows)
    per_epoch = math.ceil(num_rows / size)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(epochs):
        perm = rng.permutation(num_rows)
        perm = np.concatenate([perm, perm[: per_epoch * size - num_rows]])
        out.append(perm.reshape(per_epoch, size))
    return np.concatenate(out).astype(np.int32)


def fit_remasker(method: ReMasker, values: np.ndarray, options: FitOptions, seed: int = 0) -> tuple[dict, np.ndarray]:
    """Train ReMasker on a table.

    Args:
      method: the ReMasker method (its `num_columns` = `D`).
      values: float `[N, D]` standardized table, NaN = missing.
      options: the training recipe.
      seed: fixes initialization, minibatches and re-masks.

    Returns:
      `(params, losses)`: trained params and the float32 `[steps]` training losses.
    """
    observed = ~np.isnan(values)
    table = jax.device_put(np.where(observed, values, 0.0).astype(np.float32))
    observed = jax.device_put(observed)
    rows = minibatch_rows(values.shape[0], options.batch_size, options.epochs, seed)
    init_key, loop_key = jax.random.split(jax.random.key(seed))
    size = rows.shape[1]
    params = method.init(init_key, {"values": table[:size], "observed": observed[:size]})
    keys = jax.random.split(loop_key, rows.shape[0])
    params, losses = _train(method, options, params, table, observed, jax.device_put(rows), keys)
    return params, np.asarray(jax.device_get(losses))


def fit_ensemble(
    method: ReMasker, values: np.ndarray, options: FitOptions, seed: int = 0, members: int = 2
) -> tuple[dict, np.ndarray]:
    """Train `members` ReMasker models side by side (vmapped: one compilation, one device loop).

    Member `k` has its own initialization, minibatch order and re-masks (numpy seed
    `[seed, k]`, jax key `fold_in(key(seed), k)`); `impute_ensemble` averages their
    predictions. This averaging is an addition to ReMasker, not part of the paper.

    Args:
      method: the ReMasker method (its `num_columns` = `D`).
      values: float `[N, D]` standardized table, NaN = missing.
      options: the training recipe, shared by all members.
      seed: fixes every member.
      members: `K >= 1`, how many models.

    Returns:
      `(params, losses)`: params with a leading `[K]` axis on every leaf and the float32
      `[K, steps]` training losses.
    """
    if members < 1:
        raise ValueError(f"members (ensemble size) must be >= 1, got {members}")
    observed = ~np.isnan(values)
    table = jax.device_put(np.where(observed, values, 0.0).astype(np.float32))
    observed = jax.device_put(observed)
    num_rows = values.shape[0]
    rows = np.stack([minibatch_rows(num_rows, options.batch_size, options.epochs, [seed, k]) for k in range(members)])
    size = rows.shape[2]
    member_keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.key(seed), jnp.arange(members))
    split = jax.vmap(jax.random.split)(member_keys)  # [K, 2]: init and loop keys
    init = partial(method.init, batch={"values": table[:size], "observed": observed[:size]})
    params = jax.vmap(init)(split[:, 0])
    keys = jax.vmap(lambda key: jax.random.split(key, rows.shape[1]))(split[:, 1])
    params, losses = _train_ensemble(method, options, params, table, observed, jax.device_put(rows), keys)
    return params, np.asarray(jax.device_get(losses))


def _optimizer(options: FitOptions, steps: int) -> optax.GradientTransformation:
    per_epoch = steps // options.epochs
    config = ml_collections.ConfigDict(
        {
            "lr": options.lr,
            "min_lr": 0.0,
            "warmup_steps": options.warmup_epochs * per_epoch,
            "steps": steps,
            "b1": 0.9,
            "b2": 0.95,
            "weight_decay": options.weight_decay,
            "grad_clip": options.grad_clip,
        }
    )
    return make_optimizer(config, None)[0]


# Module-level and keyed on (method, options, shapes): fits of same-shaped tables reuse one compilation.
@partial(jax.jit, static_argnums=(0, 1))
def _train(method, options, params, table, observed, rows, keys):
    optimizer = _optimizer(options, rows.shape[0])

    def step(carry, inputs):
        params, opt_state = carry
        batch_rows, key = inputs
        batch = {"values": table[batch_rows], "observed": observed[batch_rows]}
        (loss, _), grads = jax.value_and_grad(method.loss, has_aux=True)(params, batch, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), (rows, keys))
    return params, losses


@partial(jax.jit, static_argnums=(0, 1))
def _train_ensemble(method, options, params, table, observed, rows, keys):
    train = partial(_train.__wrapped__, method, options)
    return jax.vmap(train, in_axes=(0, None, None, 0, 0))(params, table, observed, rows, keys)
