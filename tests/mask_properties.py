"""Shared checks for mask generators: determinism, variety, jit and vmap."""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def assert_trees_equal(a, b) -> None:
    la, lb = _leaves(a), _leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_array_equal(x, y)


def check_key_properties(generate: Callable, leaf: Callable = lambda out: out.mask) -> None:
    """`generate(key)` returns a pytree whose `leaf` has a leading batch axis.

    Checks, all under `jit`: the same key gives the same output; another key gives
    another mask; the examples of one batch differ; `vmap` over keys gives the
    per-key results.
    """
    fast = jax.jit(generate)
    first = fast(jax.random.key(0))
    assert_trees_equal(first, fast(jax.random.key(0)))
    assert not np.array_equal(np.asarray(leaf(first)), np.asarray(leaf(fast(jax.random.key(1)))))
    rows = np.asarray(leaf(first)).reshape(np.shape(leaf(first))[0], -1)
    assert len({r.tobytes() for r in rows}) > 1, "every example got the same mask"
    keys = jax.random.split(jax.random.key(2), 3)
    stacked = jax.jit(jax.vmap(generate))(keys)
    for i in range(3):
        assert_trees_equal(jax.tree.map(lambda x, i=i: x[i], stacked), fast(keys[i]))


def check_indices(mask) -> None:
    """A fixed-count Mask: ids_keep lists exactly the visible tokens, ids_restore inverts the shuffle."""
    hidden = np.asarray(mask.mask)
    keep = np.asarray(mask.ids_keep)
    restore = np.asarray(mask.ids_restore)
    k = keep.shape[1]
    assert ((~hidden).sum(1) == k).all()
    for row_hidden, row_keep, row_restore in zip(hidden, keep, restore, strict=True):
        assert set(row_keep.tolist()) == set(np.flatnonzero(~row_hidden).tolist())
        assert sorted(row_restore.tolist()) == list(range(len(row_restore)))
        np.testing.assert_array_equal(row_restore[row_keep], np.arange(k))
