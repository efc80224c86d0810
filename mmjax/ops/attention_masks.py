"""Static attention masks for autoregressive and prefix models (True = may attend).

Every mask here is `[1, L, L]` bool, built in numpy and returned as a `jnp` array, so it
broadcasts over the batch in `mmjax.ops.attention` and the flash kernels can see its
empty tiles. All of them are one rule over a per-position *group* id `g`: query `i`
sees key `j` exactly when `g[j] <= g[i]` (bidirectional inside a group, causal across).

- `causal`: every position is its own group.
- `block_causal`: groups are consecutive blocks of `block_size` (PAR / MAGI).
- `hybrid`: the first `prefix` positions form group 0 (class or condition tokens,
  seen by everyone); the rest is block-causal after it (prefix-LM / BAMM).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

ATTENTION_MASKS = ("full", "causal", "block_causal", "hybrid")


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _group_mask(groups: np.ndarray) -> jax.Array:
    """int `[L]` non-decreasing group ids -> bool `[1, L, L]`: query i sees key j iff `groups[j] <= groups[i]`."""
    return jnp.asarray(groups[None, None, :] <= groups[None, :, None])


def causal_mask(length: int) -> jax.Array:
    """bool `[1, L, L]`: query `i` sees keys `j <= i`."""
    _check_positive("length", length)
    return _group_mask(np.arange(length))


def block_causal_mask(length: int, block_size: int) -> jax.Array:
    """bool `[1, L, L]`: a query in block `b` sees every key in blocks `<= b`.

    Blocks are `block_size` long except the last, which may be shorter; `block_size=1`
    is `causal_mask(length)`.
    """
    _check_positive("length", length)
    _check_positive("block_size", block_size)
    return _group_mask(np.arange(length) // block_size)


def hybrid_mask(length: int, prefix: int, block_size: int = 1) -> jax.Array:
    """bool `[1, L, L]`: a bidirectional prefix, then block-causal with `block_size`.

    The first `prefix` positions see each other (and nothing after them); every later
    query sees the whole prefix plus its own and earlier blocks of the rest. `prefix=0`
    is `block_causal_mask(length, block_size)`; `prefix=length` attends fully.
    """
    _check_positive("length", length)
    _check_positive("block_size", block_size)
    if isinstance(prefix, bool) or not isinstance(prefix, (int, np.integer)) or not 0 <= prefix <= length:
        raise ValueError(f"prefix must be an int in [0, length={length}], got {prefix!r}")
    positions = np.arange(length)
    groups = np.where(positions < prefix, 0, 1 + (positions - prefix) // block_size)
    return _group_mask(groups)


def build_attention_mask(kind: str, length: int, *, prefix: int = 0, block_size: int = 1) -> jax.Array | None:
    """The `[1, L, L]` mask of `kind` (one of `ATTENTION_MASKS`); None for `full`.

    `prefix` is used by `hybrid` only and `block_size` by `block_causal` and `hybrid`;
    setting either for a kind that ignores it is an error.
    """
    if kind not in ATTENTION_MASKS:
        raise ValueError(f"attention mask kind must be one of {ATTENTION_MASKS}, got {kind!r}")
    _check_positive("length", length)
    _check_positive("block_size", block_size)
    if prefix and kind != "hybrid":
        raise ValueError(f"prefix={prefix!r} is only used by the 'hybrid' attention mask, got kind={kind!r}")
    if block_size != 1 and kind in ("full", "causal"):
        raise ValueError(f"block_size={block_size!r} needs kind 'block_causal' or 'hybrid', got kind={kind!r}")
    if kind == "full":
        return None
    if kind == "causal":
        return causal_mask(length)
    if kind == "block_causal":
        return block_causal_mask(length, block_size)
    return hybrid_mask(length, prefix, block_size)
