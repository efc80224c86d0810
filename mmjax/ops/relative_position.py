"""BEiT's relative position index: which entry of a learned bias table each (query, key) pair reads.

On a patch grid `(Gh, Gw)` two patches differ by `(dy, dx)` with `|dy| < Gh`, `|dx| < Gw`:
`(2Gh - 1)(2Gw - 1)` entries, row-major over `(dy + Gh - 1, dx + Gw - 1)`. Three more entries
follow for the cls token: cls -> patch, patch -> cls and cls -> cls, as BEiT and HF number them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def relative_position_entries(grid: tuple[int, int]) -> int:
    """Rows of the bias table of a `(Gh, Gw)` grid: `(2Gh - 1)(2Gw - 1) + 3`."""
    rows, cols = grid
    return (2 * rows - 1) * (2 * cols - 1) + 3


def relative_position_index(grid: tuple[int, int]) -> np.ndarray:
    """int32 `[1 + N, 1 + N]` table rows for the `[cls, patches]` sequence (query row, key column)."""
    rows, cols = grid
    coords = np.stack(np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij"), -1).reshape(-1, 2)
    delta = coords[:, None, :] - coords[None, :, :]  # [N, N, 2]
    entries = relative_position_entries(grid)
    index = np.empty((rows * cols + 1,) * 2, np.int32)
    index[1:, 1:] = (delta[..., 0] + rows - 1) * (2 * cols - 1) + delta[..., 1] + cols - 1
    index[0, :] = entries - 3  # cls -> patch
    index[:, 0] = entries - 2  # patch -> cls
    index[0, 0] = entries - 1
    return index


def sequence_relative_index(
    grid: tuple[int, int], ids_keep: jax.Array | None = None, cls_token: bool = True
) -> jax.Array:
    """The index of the sequence an encoder actually runs: `[1 or B, L, L]` int32.

    Args:
      grid: the patch grid `(Gh, Gw)`.
      ids_keep: int `[B, K]` patches kept (MAE-style sparse encoding), or None for all `N`.
      cls_token: whether the sequence starts with a cls token.

    Returns:
      `[1, L, L]` for all patches, else `[B, L, L]`; `L = K` or `N`, plus one with a cls token.
    """
    full = relative_position_index(grid)
    if ids_keep is None:
        return jnp.asarray(full if cls_token else full[1:, 1:])[None]
    positions = 1 + jnp.asarray(ids_keep, jnp.int32)
    if cls_token:
        positions = jnp.concatenate([jnp.zeros((positions.shape[0], 1), jnp.int32), positions], axis=1)
    return jnp.asarray(full)[positions[:, :, None], positions[:, None, :]]
