"""k-nearest-neighbour classification on frozen features (cosine similarity), as SSL papers report it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def knn_accuracy(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    k: int = 20,
    temperature: float | None = 0.07,
    chunk: int = 1024,
) -> float:
    """Test accuracy of a cosine-similarity kNN vote.

    Args:
      train_x, test_x: `[N, D]` features (L2-normalized here).
      train_y, test_y: int `[N]` labels.
      k: neighbours per test example.
      temperature: None -> majority vote (ties to the smallest label, like scikit-learn's
        `KNeighborsClassifier(metric="cosine")`); a float -> each neighbour votes
        `exp(similarity / temperature)` (the weighted kNN of InstDisc / DINO).
      chunk: test examples per device call.
    """
    if not 1 <= k <= len(train_x):
        raise ValueError(f"k={k} must be between 1 and the number of training examples ({len(train_x)})")
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"train and test features differ in width: {train_x.shape[1]} vs {test_x.shape[1]}")
    num_classes = int(max(train_y.max(), test_y.max())) + 1

    def normalize(x):
        x = jnp.asarray(x, jnp.float32)
        return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)

    bank, labels = normalize(train_x), jnp.asarray(train_y)

    @jax.jit
    def predict(queries):
        sims, idx = jax.lax.top_k(normalize(queries) @ bank.T, k)  # [b, k]
        votes = jnp.ones_like(sims) if temperature is None else jnp.exp(sims / temperature)
        scores = (
            jnp.zeros((queries.shape[0], num_classes)).at[jnp.arange(queries.shape[0])[:, None], labels[idx]].add(votes)
        )
        return jnp.argmax(scores, axis=-1)

    predictions = np.concatenate([np.asarray(predict(test_x[i : i + chunk])) for i in range(0, len(test_x), chunk)])
    return float(np.mean(predictions == test_y))
