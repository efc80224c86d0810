"""Linear probe on frozen features: standardize (a BatchNorm without affine), then softmax regression."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax


def extract_features(
    feature_fn: Callable[[jax.Array], jax.Array], batches: Iterable[dict[str, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """Apply `feature_fn` (uint8 `[b, H, W, C]` -> `[b, D]`) to every batch; returns (features, labels)."""
    feats, labels = [], []
    for batch in batches:
        feats.append(np.asarray(jax.device_get(feature_fn(jnp.asarray(batch["image"])))))
        labels.append(np.asarray(batch["label"]))
    return np.concatenate(feats), np.concatenate(labels)


def linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    steps: int = 500,
    l2: float = 1e-4,
    lr: float = 1e-2,
) -> float:
    """Test accuracy of a multinomial logistic regression trained full-batch with Adam.

    Args:
      train_x, test_x: `[N, D]` features (standardized with the train statistics here).
      train_y, test_y: int `[N]` labels.
    """
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    x = jnp.asarray((train_x - mean) / std, jnp.float32)
    xt = jnp.asarray((test_x - mean) / std, jnp.float32)
    params = _fit(x, jnp.asarray(train_y, jnp.int32), num_classes, steps, l2, lr)
    predictions = np.asarray(jnp.argmax(xt @ params["w"] + params["b"], axis=-1))
    return float(np.mean(predictions == test_y))


@partial(jax.jit, static_argnums=(2, 3))
def _fit(x: jax.Array, y: jax.Array, num_classes: int, steps: int, l2: float, lr: float) -> dict[str, jax.Array]:
    """Full-batch Adam on softmax regression; one compile per (shape, classes, steps), data as arguments."""
    params = {"w": jnp.zeros((x.shape[1], num_classes)), "b": jnp.zeros((num_classes,))}
    opt = optax.adam(lr)

    def loss_fn(p):
        logits = x @ p["w"] + p["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean() + l2 * jnp.sum(p["w"] ** 2)

    def body(_, carry):
        p, s = carry
        updates, s = opt.update(jax.grad(loss_fn)(p), s, p)
        return optax.apply_updates(p, updates), s

    return jax.lax.fori_loop(0, steps, body, (params, opt.init(params)))[0]
