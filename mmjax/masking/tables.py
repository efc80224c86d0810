"""The ReMasker mask algebra for tabular imputation (Du et al. 2024, "ReMasker")."""

from __future__ import annotations

from functools import partial

import flax.struct
import jax
import jax.numpy as jnp

from mmjax.masking.dense import select_lowest


@flax.struct.dataclass
class RemaskerMasks:
    """The masks of one ReMasker step over a `[B, D]` table.

    Attributes:
      missing: bool `[B, D]`, naturally missing cells (predicted at inference).
      remasked: bool `[B, D]`, observed cells hidden on purpose (where the loss is taken).
      hidden: bool `[B, D]`, `missing | remasked`: what the encoder does not see
        (the `Mask.mask` of this step).
      visible: bool `[B, D]`, `~hidden`: observed and not re-masked.
    """

    missing: jax.Array
    remasked: jax.Array
    hidden: jax.Array
    visible: jax.Array

    @property
    def loss(self) -> jax.Array:
        """bool `[B, D]`: cells with a loss, the re-masked observed ones."""
        return self.remasked


def observed_cells(values: jax.Array) -> jax.Array:
    """bool `[B, D]`: True where a value is present (not NaN)."""
    return ~jnp.isnan(values)


@partial(jax.jit, static_argnames=("remask_ratio", "min_visible"))
def remasker_masks(
    key: jax.Array, observed: jax.Array, remask_ratio: float = 0.5, *, min_visible: int = 1
) -> RemaskerMasks:
    """ReMasker masking: natural missingness OR a random re-mask of the observed cells.

    Each row re-masks `round(remask_ratio * n_obs)` of its `n_obs` observed cells,
    leaving at least `min_visible` observed cells visible (when it has that many).
    The encoder sees `visible`; the loss is on `remasked`; inference predicts `missing`.

    Args:
      key: PRNG key.
      observed: bool `[B, D]` (see `observed_cells`).
      remask_ratio: fraction of observed cells re-masked (0.5 in ReMasker).
      min_visible: observed cells always left visible per row.

    Returns:
      RemaskerMasks with `[B, D]` arrays.
    """
    if not 0.0 <= remask_ratio <= 1.0:
        raise ValueError(f"remask_ratio must be in [0, 1], got {remask_ratio}")
    observed = observed.astype(bool)
    n_obs = jnp.sum(observed, axis=1)
    count = jnp.round(remask_ratio * n_obs).astype(jnp.int32)
    count = jnp.maximum(0, jnp.minimum(count, n_obs - min_visible))
    remasked = select_lowest(jax.random.uniform(key, observed.shape), observed, count)
    hidden = ~observed | remasked
    return RemaskerMasks(missing=~observed, remasked=remasked, hidden=hidden, visible=~hidden)
