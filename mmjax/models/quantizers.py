"""Vector quantizers as pure functions: a cosine VQ codebook (EMA or straight-through) and FSQ.

The VQ codebook follows BEiT v2 / ViT-VQGAN: encodings and codes are L2-normalized, so the
nearest code is the one with the largest cosine. Its state is plain arrays kept in the params
tree (`codebook [K, D]`, `usage [K]`, `restarts []`); the statistics a step needs to update it
come out of `vq_statistics` and are applied by `ema_codebook_update` and `restart_dead_codes`.

FSQ (Mentzer et al. 2023) bounds each of `len(levels)` channels and rounds it to one of
`levels[i]` values; the codebook is implicit (`prod(levels)` codes) and has no state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp


def l2_normalize(x: jax.Array, eps: float = 1e-6) -> jax.Array:
    """Unit vectors along the last axis (`x / max(|x|, eps)`)."""
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


# --- VQ --------------------------------------------------------------------------------


def nearest_codes(z: jax.Array, codebook: jax.Array) -> jax.Array:
    """Cosine nearest-code lookup: `z [..., D]`, `codebook [K, D]` -> int32 ids `[...]`."""
    sims = jnp.einsum("...d,kd->...k", l2_normalize(z), l2_normalize(codebook))
    return jnp.argmax(sims, axis=-1).astype(jnp.int32)


def code_counts(ids: jax.Array, vocab_size: int) -> jax.Array:
    """How often each code occurs: int ids of any shape -> float32 `[K]`."""
    return jnp.zeros((vocab_size,), jnp.float32).at[ids.reshape(-1)].add(1.0)


def codebook_usage(counts: jax.Array) -> jax.Array:
    """Fraction of the `K` codes used at least once: counts `[K]` -> scalar."""
    return jnp.mean((counts > 0).astype(jnp.float32))


def code_perplexity(counts: jax.Array) -> jax.Array:
    """`exp(entropy)` of the code histogram `[K]`: 1 when one code is used, K when all equally."""
    p = counts / jnp.maximum(jnp.sum(counts), 1.0)
    return jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)))


def quantize_vq(z: jax.Array, codebook: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Quantize encodings with a straight-through estimator.

    Args:
      z: `[..., D]` encoder outputs (not yet normalized).
      codebook: `[K, D]`.

    Returns:
      `(z_q, ids, z_n)`: `z_q [..., D]` equals the chosen unit code in the forward pass and
      carries the gradient to `z_n` (the unit encodings) in the backward pass; ids int32 `[...]`.
    """
    z_n = l2_normalize(z)
    ids = nearest_codes(z_n, codebook)
    codes = l2_normalize(codebook)[ids]
    return z_n + jax.lax.stop_gradient(codes - z_n), ids, z_n


def vq_losses(z_n: jax.Array, ids: jax.Array, codebook: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`(codebook_loss, commitment_loss)`: mean squared distance between unit encodings `[..., D]`
    and their unit codes, with the gradient to the codebook only, then to the encodings only."""
    codes = l2_normalize(codebook)[ids]
    per_dim = z_n.shape[-1]
    codebook_loss = jnp.mean(jnp.sum((jax.lax.stop_gradient(z_n) - codes) ** 2, -1)) / per_dim
    commitment = jnp.mean(jnp.sum((z_n - jax.lax.stop_gradient(codes)) ** 2, -1)) / per_dim
    return codebook_loss, commitment


def vq_statistics(z_n: jax.Array, ids: jax.Array, vocab_size: int, rng: jax.Array) -> dict[str, jax.Array]:
    """A batch's codebook statistics, for `after_step` (all without gradient).

    Args:
      z_n: `[..., D]` unit encodings; ids: int `[...]` their codes.
      rng: picks the restart candidates.

    Returns:
      `counts [K]` assignments per code, `sums [K, D]` sum of the unit encodings assigned to
      each code, `candidates [K, D]` unit encodings drawn uniformly from the batch (one per
      code, the replacement should that code be dead).
    """
    flat = jax.lax.stop_gradient(z_n.reshape(-1, z_n.shape[-1]))
    flat_ids = ids.reshape(-1)
    sums = jnp.zeros((vocab_size, flat.shape[-1]), jnp.float32).at[flat_ids].add(flat.astype(jnp.float32))
    picks = jax.random.randint(rng, (vocab_size,), 0, flat.shape[0])
    return {"counts": code_counts(flat_ids, vocab_size), "sums": sums, "candidates": flat[picks]}


def ema_codebook_update(codebook: jax.Array, counts: jax.Array, sums: jax.Array, decay: float) -> jax.Array:
    """BEiT v2's normalized EMA: for each code used in the batch,
    `c <- l2norm(decay * c + (1 - decay) * l2norm(mean of its unit encodings))`; unused codes stay.

    Shapes: codebook `[K, D]`, counts `[K]`, sums `[K, D]` -> `[K, D]`.
    """
    mean = l2_normalize(sums / jnp.maximum(counts, 1.0)[:, None])
    updated = l2_normalize(decay * codebook + (1.0 - decay) * mean)
    return jnp.where((counts > 0)[:, None], updated, codebook)


def update_usage(usage: jax.Array, counts: jax.Array, decay: float) -> jax.Array:
    """EMA of each code's share relative to uniform use: `usage <- decay * usage + (1 - decay) * K * counts / sum`.

    1.0 means the code is used as often as under a uniform assignment. `[K]` -> `[K]`.
    """
    share = counts.shape[0] * counts / jnp.maximum(jnp.sum(counts), 1.0)
    return decay * usage + (1.0 - decay) * share


def restart_dead_codes(
    codebook: jax.Array, usage: jax.Array, candidates: jax.Array, threshold: float
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Replace each code whose usage EMA is below `threshold` by its candidate encoding.

    Shapes: codebook `[K, D]`, usage `[K]`, candidates `[K, D]`. Returns the new codebook, the
    usage with restarted codes reset to 1 (so they get time to be chosen), and the bool `[K]`
    restarted codes. Static shapes: every code is computed, the dead ones are selected.
    """
    dead = usage < threshold
    codebook = jnp.where(dead[:, None], candidates.astype(codebook.dtype), codebook)
    return codebook, jnp.where(dead, 1.0, usage), dead


# --- FSQ -------------------------------------------------------------------------------


def fsq_vocab_size(levels: Sequence[int]) -> int:
    """`prod(levels)` codes."""
    return math.prod(levels)


def _fsq_constants(levels: Sequence[int]) -> tuple[jax.Array, jax.Array, jax.Array]:
    lv = jnp.asarray(levels, jnp.float32)
    half = jnp.floor(lv / 2)  # integer half width: values after rounding lie in [-half, L - 1 - half]
    offset = jnp.where(jnp.asarray(levels) % 2 == 0, 0.5, 0.0)
    return lv, half, offset


def fsq_bound(z: jax.Array, levels: Sequence[int], eps: float = 1e-3) -> jax.Array:
    """Squash `[..., len(levels)]` so that rounding channel i gives one of `levels[i]` integers.

    `tanh(z + shift) * (L - 1) / 2 * (1 - eps) - offset`, with offset 0.5 for even L (so the L
    integers are `-L/2 .. L/2 - 1`) and the shift that maps z = 0 to 0.
    """
    lv, _, offset = _fsq_constants(levels)
    half_l = (lv - 1) * (1 - eps) / 2
    shift = jnp.arctanh(offset / half_l)
    return jnp.tanh(z + shift) * half_l - offset


def quantize_fsq(z: jax.Array, levels: Sequence[int]) -> tuple[jax.Array, jax.Array]:
    """FSQ with straight-through rounding.

    Args:
      z: `[..., len(levels)]`.

    Returns:
      `(z_q, ids)`: `z_q [..., len(levels)]` on the grid `integers / half`, in [-1, 1] (the
      gradient passes the rounding unchanged); ids int32 `[...]` in `[0, prod(levels))`.
    """
    if z.shape[-1] != len(levels):
        raise ValueError(
            f"FSQ input must have {len(levels)} channels (tokenizer.levels={tuple(levels)}); got {z.shape}"
        )
    bounded = fsq_bound(z, levels)
    rounded = bounded + jax.lax.stop_gradient(jnp.round(bounded) - bounded)
    _, half, _ = _fsq_constants(levels)
    z_q = rounded / half
    return z_q, fsq_codes_to_ids(z_q, levels)


def _basis(levels: Sequence[int]) -> jax.Array:
    return jnp.asarray([math.prod(levels[:i]) for i in range(len(levels))], jnp.int32)


def fsq_codes_to_ids(z_q: jax.Array, levels: Sequence[int]) -> jax.Array:
    """Grid values `[..., len(levels)]` -> ids int32 `[...]` (digit i = `z_q * half + half`, mixed radix)."""
    _, half, _ = _fsq_constants(levels)
    digits = jnp.round(z_q * half + half).astype(jnp.int32)
    return jnp.sum(digits * _basis(levels), axis=-1).astype(jnp.int32)


def fsq_ids_to_digits(ids: jax.Array, levels: Sequence[int]) -> jax.Array:
    """ids int `[...]` -> digits int32 `[..., len(levels)]`, digit i in `[0, levels[i])`."""
    return (ids[..., None] // _basis(levels)) % jnp.asarray(levels, jnp.int32)


def fsq_ids_to_codes(ids: jax.Array, levels: Sequence[int]) -> jax.Array:
    """ids int `[...]` -> grid values float32 `[..., len(levels)]` (the inverse of `fsq_codes_to_ids`)."""
    _, half, _ = _fsq_constants(levels)
    return (fsq_ids_to_digits(ids, levels).astype(jnp.float32) - half) / half
