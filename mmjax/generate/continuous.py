"""Generation over continuous tokens: masked (MaskGIT / MAR order) and block-causal (GIVT) loops.

`decode_masked` is MaskGIT's schedule over real-valued tokens. At step `t` of `T` every
unknown token is sampled by `predict_fn`; the `mask_len` lowest-scoring unknown tokens stay
unknown (the same `mask_len_schedule` as the discrete decoder), the others are kept. Scores
are the model's confidence plus annealed Gumbel noise (GIVT's masked variant, MaskGIT's
ordering), or a fixed random priority drawn once (MAR's random order). The last step keeps
every sample, so nothing stays unknown; given tokens are never changed.

`decode_causal` fills `block_size` tokens per step in raster order (GIVT-causal: one token per
step; block-causal next-block prediction with more).

Both run a `lax.fori_loop` with fixed shapes: one compile under `jit`.
"""

from __future__ import annotations

from collections.abc import Callable

import flax
import jax
import jax.numpy as jnp

from mmjax.generate.decode import mask_len_schedule
from mmjax.masking.dense import select_lowest

# predict_fn(tokens [B, N, C], known [B, N], step, rng) -> (samples [B, N, C], confidence [B, N]).
PredictFn = Callable[[jax.Array, jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
ORDERS = ("confidence", "random")


@flax.struct.dataclass
class ContinuousDecodeState:
    """The loop carry: `tokens` float32 `[B, N, C]`, `known` bool `[B, N]`, `history` int32 `[T, B]`
    (tokens known after each step)."""

    rng: jax.Array
    tokens: jax.Array
    known: jax.Array
    history: jax.Array


def decode_masked(
    tokens: jax.Array,
    known: jax.Array,
    rng: jax.Array,
    predict_fn: PredictFn,
    *,
    num_steps: int,
    schedule: str = "cosine",
    order: str = "confidence",
    choice_temperature: float = 0.0,
) -> ContinuousDecodeState:
    """Fill the unknown tokens of `tokens` in `num_steps` parallel steps.

    Args:
      tokens: float `[B, N, C]`; values at unknown positions are ignored.
      known: bool `[B, N]`, the given tokens (all False to generate from scratch).
      rng: PRNG key.
      predict_fn: `(tokens, known, step, rng) -> (samples [B, N, C], confidence [B, N])`.
      num_steps: T, static.
      schedule: a `mmjax.masking.MASKGIT_SCHEDULES` name for how many stay unknown.
      order: `confidence` (the model's confidence, with `choice_temperature * (1 - (t+1)/T)` Gumbel
        noise) or `random` (a random priority per token, drawn once: MAR).
      choice_temperature: the Gumbel noise scale of `confidence` ordering.

    Returns:
      The final state: `tokens` `[B, N, C]` with every position filled, `known` all True.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    tokens = jnp.asarray(tokens, jnp.float32)
    known = jnp.asarray(known, bool)
    unknown_at_start = jnp.sum(~known, axis=-1)
    rng, order_rng = jax.random.split(rng)
    priority = jax.random.uniform(order_rng, known.shape)

    def body(step: jax.Array, state: ContinuousDecodeState) -> ContinuousDecodeState:
        rng, sample_rng, choice_rng = jax.random.split(state.rng, 3)
        samples, confidence = predict_fn(state.tokens, state.known, step, sample_rng)
        unknown = ~state.known
        if order == "random":
            scores = priority
        else:
            ratio = (step + 1.0) / num_steps
            gumbel = jax.random.gumbel(choice_rng, confidence.shape)
            scores = confidence.astype(jnp.float32) + choice_temperature * (1.0 - ratio) * gumbel
        mask_len = mask_len_schedule(unknown_at_start, jnp.sum(unknown, axis=-1), step, num_steps, schedule)
        stay = select_lowest(scores, unknown, mask_len) & (step < num_steps - 1)
        reveal = unknown & ~stay
        filled = jnp.where(reveal[..., None], samples.astype(jnp.float32), state.tokens)
        now_known = state.known | reveal
        return ContinuousDecodeState(
            rng=rng,
            tokens=filled,
            known=now_known,
            history=state.history.at[step].set(jnp.sum(now_known, axis=-1).astype(jnp.int32)),
        )

    init = ContinuousDecodeState(
        rng=rng,
        tokens=jnp.where(known[..., None], tokens, 0.0),
        known=known,
        history=jnp.zeros((num_steps, known.shape[0]), jnp.int32),
    )
    return jax.lax.fori_loop(0, num_steps, body, init)


# block_fn(tokens [B, N, C], start, rng) -> samples [B, block_size, C] for positions start .. start + block_size.
BlockFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def decode_causal(shape: tuple[int, int, int], rng: jax.Array, block_fn: BlockFn, *, block_size: int = 1) -> jax.Array:
    """Generate tokens of `shape` `(B, N, C)` block by block in raster order: `N / block_size` calls of `block_fn`.

    `block_fn` sees the tokens filled so far (later positions hold zeros; a causal model never
    reads them) and returns the next block's samples.

    Returns:
      float32 `[B, N, C]`.
    """
    batch, num_tokens, channels = shape
    if block_size < 1 or num_tokens % block_size:
        raise ValueError(f"block_size={block_size} must be >= 1 and divide the {num_tokens} tokens")

    def body(i: jax.Array, carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        current, key = carry
        key, step_key = jax.random.split(key)
        start = i * block_size
        block = block_fn(current, start, step_key).astype(jnp.float32)
        return jax.lax.dynamic_update_slice(current, block, (0, start, 0)), key

    init = jnp.zeros((batch, num_tokens, channels), jnp.float32)
    return jax.lax.fori_loop(0, num_tokens // block_size, body, (init, rng))[0]


__all__ = ["ORDERS", "ContinuousDecodeState", "decode_causal", "decode_masked"]
