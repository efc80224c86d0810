"""Shared pieces of the latent-target method tests: bundled digits and a jitted update step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

from mmjax.train.optimizer import make_optimizer


def digit_images(count: int) -> jax.Array:
    """`[count, 8, 8, 1]` scikit-learn digits scaled to roughly zero mean, unit std."""
    images = load_digits().images[:count].astype(np.float32) / 16.0
    return jnp.asarray((images[..., None] - 0.3) / 0.4)


def run_steps(method, train_config, params, images, steps: int, seed: int = 0):
    """`steps` updates the trainer's way (its optimizer, frozen leaves, `after_step`) on one batch.

    Returns the first step's `(params_before, params_after, grads, metrics)`, the final params
    and every step's loss.
    """
    optimizer, _ = make_optimizer(train_config, params, method.trainable(params))
    after_step = getattr(method, "after_step", None)

    @jax.jit
    def step(params, opt_state, key, i):
        (loss, metrics), grads = jax.value_and_grad(method.loss, has_aux=True)(params, {"image": images}, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        new = optax.apply_updates(params, updates)
        if after_step is not None:
            new = after_step(new, None, i)
        return new, opt_state, loss, grads, metrics

    opt_state = optimizer.init(params)
    first, losses, start = None, [], params
    for i in range(steps):
        params, opt_state, loss, grads, metrics = step(params, opt_state, jax.random.key(seed + i), jnp.int32(i))
        if first is None:
            first = (start, params, grads, metrics)
        losses.append(float(loss))
    return first, params, losses
