"""The `Mask` pytree and MAE's random masking.

Convention (DESIGN.md): `mask` is True where a token is hidden from the encoder.
Generators with a fixed visible count also return `ids_keep` and `ids_restore`
(the MAE keep/restore convention).
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class Mask:
    """Which tokens are hidden, and how to gather and restore them.

    Attributes:
      mask: bool `[B, N]`, True = hidden from the encoder.
      ids_keep: int32 `[B, K]`, indices of the visible tokens in the order the
        encoder sees them (None for generators without a fixed visible count).
      ids_restore: int32 `[B, N]`, the permutation that puts
        `concat(visible, hidden)` back in the original token order.
    """

    mask: jax.Array
    ids_keep: jax.Array | None = None
    ids_restore: jax.Array | None = None

    @property
    def num_visible(self) -> int:
        """K, the static number of visible tokens (needs `ids_keep`)."""
        if self.ids_keep is None:
            raise ValueError("Mask.num_visible needs ids_keep; this mask has a variable count")
        return self.ids_keep.shape[1]


def num_visible_tokens(num_tokens: int, mask_ratio: float) -> int:
    """MAE's kept count `int(N * (1 - r))`, with the ratio checked."""
    if isinstance(mask_ratio, jax.core.Tracer):
        raise TypeError("mask_ratio must be a Python float (it fixes the static kept count), got a traced value")
    if not 0.0 <= float(mask_ratio) <= 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1], got {mask_ratio}")
    return int(num_tokens * (1 - mask_ratio))


def inverse_permutation(perm: jax.Array) -> jax.Array:
    """`argsort(perm)` for permutations `[B, N]`, by a scatter instead of a sort."""
    batch, num_tokens = perm.shape
    rows = jnp.arange(batch)[:, None]
    positions = jnp.broadcast_to(jnp.arange(num_tokens, dtype=perm.dtype), perm.shape)
    return jnp.zeros_like(perm).at[rows, perm].set(positions)


def mask_from_ranking(scores: jax.Array, num_visible: int) -> Mask:
    """Keep the `num_visible` lowest-scoring tokens of each example, hide the rest.

    The count form of `random_mask_from_noise` (MAE convention: `ids_keep` lists the
    visible tokens from the lowest score up).

    Args:
      scores: float `[B, N]`.
      num_visible: K, a Python int in `[0, N]`.

    Returns:
      Mask with `mask` `[B, N]`, `ids_keep` `[B, K]`, `ids_restore` `[B, N]`.
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be [B, N], got shape {scores.shape}")
    if not 0 <= num_visible <= scores.shape[1]:
        raise ValueError(f"num_visible must be in [0, {scores.shape[1]}], got {num_visible}")
    ids_shuffle = jnp.argsort(scores, axis=1).astype(jnp.int32)
    ids_restore = inverse_permutation(ids_shuffle)
    # A token is hidden when its rank in the shuffle is at or past K.
    return Mask(mask=ids_restore >= num_visible, ids_keep=ids_shuffle[:, :num_visible], ids_restore=ids_restore)


def random_mask_from_noise(noise: jax.Array, mask_ratio: float) -> Mask:
    """MAE masking from given noise: the tokens with the smallest noise stay visible.

    Follows facebookresearch/mae `random_masking` and HF `ViTMAEEmbeddings.random_masking`:
    `ids_shuffle = argsort(noise)`, `ids_restore = argsort(ids_shuffle)`, keep the first
    `K = int(N * (1 - mask_ratio))` of the shuffle.

    Args:
      noise: float `[B, N]`.
      mask_ratio: fraction of tokens to hide, a Python float in [0, 1].

    Returns:
      Mask with `mask` `[B, N]`, `ids_keep` `[B, K]`, `ids_restore` `[B, N]`.
    """
    if noise.ndim != 2:
        raise ValueError(f"noise must be [B, N], got shape {noise.shape}")
    return mask_from_ranking(noise, num_visible_tokens(noise.shape[1], mask_ratio))


def random_mask(key: jax.Array, batch_size: int, num_tokens: int, mask_ratio: float) -> Mask:
    """MAE random masking: hide `N - int(N * (1 - mask_ratio))` tokens per example, uniformly.

    Each example gets its own uniform noise `[B, N]`; see `random_mask_from_noise`.
    """
    noise = jax.random.uniform(key, (batch_size, num_tokens))
    return random_mask_from_noise(noise, mask_ratio)
