"""Masks over several modalities or views: 4M's token budgets and DMJD's disjoint view masks."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.masking.mask import Mask, inverse_permutation


@flax.struct.dataclass
class MultimodalMasks:
    """Input and target token sets over concatenated modalities (N = sum of modality sizes).

    Attributes:
      input_ids: int32 `[B, I]`, the input tokens (I = input budget), grouped by draw order.
      target_ids: int32 `[B, T]`, the target tokens (T = target budget).
      input_mask: bool `[B, N]`, True at input tokens.
      target_mask: bool `[B, N]`, True at target tokens (disjoint from the inputs).
      input_counts: int32 `[B, M]`, input tokens per modality.
      target_counts: int32 `[B, M]`, target tokens per modality.
    """

    input_ids: jax.Array
    target_ids: jax.Array
    input_mask: jax.Array
    target_mask: jax.Array
    input_counts: jax.Array
    target_counts: jax.Array


def _apportion(key, available, modality, proportions, sizes):
    """Scores whose lowest `k` split `k` tokens across modalities in proportion, with caps.

    Available token j (in random order) of modality m scores `(j + 0.5) / p_m`
    (Webster / Sainte-Lague apportionment); a modality with fewer tokens than its share
    runs out and the others fill in. Unavailable tokens score inf.
    """
    # Sort by modality, then available tokens in random order, then the unavailable ones.
    within = jnp.where(available, 0.5 * jax.random.uniform(key, available.shape), 0.75)
    rank = jnp.argsort(jnp.argsort(modality + within, axis=1), axis=1)
    offsets = jnp.asarray(np.cumsum([0] + sizes[:-1]), jnp.int32)
    j = rank - offsets[modality]
    p = jnp.take_along_axis(proportions, jnp.broadcast_to(modality, available.shape), axis=1)
    return jnp.where(available, (j + 0.5) / jnp.maximum(p, 1e-12), jnp.inf)


def multimodal_budget_masks(
    key: jax.Array,
    batch_size: int,
    tokens_per_modality: Sequence[int],
    input_budget: int,
    target_budget: int,
    *,
    input_alpha: float | Sequence[float] = 1.0,
    target_alpha: float | Sequence[float] = 1.0,
) -> MultimodalMasks:
    """4M multimodal masking (Mizrahi et al. 2023): Dirichlet-split input and target token budgets.

    Per example, input proportions over the M modalities are drawn from
    Dirichlet(`input_alpha`) and `input_budget` tokens are split across modalities in
    those proportions (Sainte-Lague rounding; a modality with fewer tokens than its
    share gives the rest to the others), chosen uniformly within each modality. Target
    proportions are drawn from Dirichlet(`target_alpha`) and `target_budget` tokens are
    chosen the same way among the tokens that are not inputs. Budgets are exact.

    Args:
      key: PRNG key.
      batch_size: B.
      tokens_per_modality: sizes of the M modalities, concatenated in this order.
      input_budget: I, input tokens per example.
      target_budget: T, target tokens per example; `I + T <= N`.
      input_alpha, target_alpha: Dirichlet concentrations (scalar or one per modality).

    Returns:
      MultimodalMasks.
    """
    sizes = [int(s) for s in tokens_per_modality]
    num_tokens = sum(sizes)
    if min(sizes, default=0) < 1:
        raise ValueError(f"tokens_per_modality must be positive, got {tokens_per_modality}")
    if input_budget < 0 or target_budget < 0 or input_budget + target_budget > num_tokens:
        raise ValueError(
            f"input_budget + target_budget must be in [0, {num_tokens}], got {input_budget} + {target_budget}"
        )
    as_tuple = lambda a: tuple(float(x) for x in a) if isinstance(a, Sequence) else float(a)
    return _budget_masks(
        key,
        batch_size,
        tuple(sizes),
        input_budget,
        target_budget,
        as_tuple(input_alpha),
        as_tuple(target_alpha),
    )


@partial(jax.jit, static_argnums=(1, 2, 3, 4, 5, 6))
def _budget_masks(key, batch_size, sizes, input_budget, target_budget, input_alpha, target_alpha):
    num_tokens, num_modalities = sum(sizes), len(sizes)
    sizes = list(sizes)
    modality = jnp.asarray(np.repeat(np.arange(num_modalities), sizes), jnp.int32)
    k_pin, k_tin, k_ptg, k_ttg = jax.random.split(key, 4)

    def dirichlet(k, alpha):
        alpha = jnp.broadcast_to(jnp.asarray(alpha, jnp.float32), (num_modalities,))
        return jax.random.dirichlet(k, alpha, (batch_size,))

    everything = jnp.ones((batch_size, num_tokens), bool)
    in_scores = _apportion(k_tin, everything, modality, dirichlet(k_pin, input_alpha), sizes)
    input_ids = jnp.argsort(in_scores, axis=1)[:, :input_budget].astype(jnp.int32)
    input_mask = jnp.zeros_like(everything).at[jnp.arange(batch_size)[:, None], input_ids].set(True)
    tg_scores = _apportion(k_ttg, ~input_mask, modality, dirichlet(k_ptg, target_alpha), sizes)
    target_ids = jnp.argsort(tg_scores, axis=1)[:, :target_budget].astype(jnp.int32)
    target_mask = jnp.zeros_like(everything).at[jnp.arange(batch_size)[:, None], target_ids].set(True)
    per_modality = jax.nn.one_hot(modality, num_modalities, dtype=jnp.int32)
    return MultimodalMasks(
        input_ids=input_ids,
        target_ids=target_ids,
        input_mask=input_mask,
        target_mask=target_mask,
        input_counts=input_mask.astype(jnp.int32) @ per_modality,
        target_counts=target_mask.astype(jnp.int32) @ per_modality,
    )


@partial(jax.jit, static_argnames=("batch_size", "num_tokens", "num_views", "num_visible"))
def disjoint_view_masks(
    key: jax.Array, batch_size: int, num_tokens: int, num_views: int, num_visible: int | None = None
) -> Mask:
    """DMJD disjoint masking (Ma et al. 2023): several views whose visible sets never overlap.

    One random permutation per example is cut into `num_views` consecutive pieces of
    `num_visible` tokens; view v sees piece v. With the default
    `num_visible = N // num_views` and N divisible by the view count the masks are
    complementary: every token is visible in exactly one view.

    Args:
      key: PRNG key.
      batch_size: B.
      num_tokens: N.
      num_views: V.
      num_visible: K per view, `V * K <= N`.

    Returns:
      Mask whose arrays carry a leading view axis: `mask` `[V, B, N]`, `ids_keep`
      `[V, B, K]`, `ids_restore` `[V, B, N]` (each `[B, ...]` slice is a regular Mask).
    """
    num_visible = num_tokens // num_views if num_visible is None else num_visible
    if num_views < 1 or num_views * num_visible > num_tokens:
        raise ValueError(f"num_views * num_visible must be <= {num_tokens}, got {num_views} * {num_visible}")
    perm = jnp.argsort(jax.random.uniform(key, (batch_size, num_tokens)), axis=1).astype(jnp.int32)
    masks = []
    for view in range(num_views):
        # Rotate the permutation so that this view's piece comes first.
        shuffle = jnp.roll(perm, -view * num_visible, axis=1)
        restore = inverse_permutation(shuffle)
        masks.append(Mask(mask=restore >= num_visible, ids_keep=shuffle[:, :num_visible], ids_restore=restore))
    return jax.tree.map(lambda *xs: jnp.stack(xs), *masks)
