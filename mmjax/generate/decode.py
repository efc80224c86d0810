"""MaskGIT's iterative parallel decoding (Chang et al. 2022, `libml/parallel_decode.py`).

Start from a code map where unknown positions hold the mask id. At step `t` of `T`:
sample every position from `tokens_to_logits`, keep the known codes, take the
probability of each sampled code as its confidence (known codes: +inf), and re-mask the
`mask_len = max(1, min(unknown - 1, floor(N0 * schedule((t + 1) / T))))` least confident,
after adding Gumbel noise scaled by `choice_temperature * (1 - (t + 1) / T)` to the log
confidence. The last step's samples are the output, so nothing stays masked.

A fixed number of steps runs in a `lax.fori_loop` over a small frozen state with fixed
shapes, so the whole decode compiles once under `jit`.
"""

from __future__ import annotations

from collections.abc import Callable

import flax
import jax
import jax.numpy as jnp

from mmjax.masking.dense import select_lowest
from mmjax.masking.schedules import maskgit_schedule

# tokens_to_logits(codes [B, N] int32, step int32 scalar) -> logits [B, N, V] over the V codes.
FLOOR_SLACK = 1e-4

TokensToLogits = Callable[[jax.Array, jax.Array], jax.Array]


@flax.struct.dataclass
class DecodeState:
    """The loop carry.

    step: int32 scalar, the next step.
    rng: PRNG key.
    codes: int32 `[B, N]`, the current map (mask id where unknown).
    final: int32 `[B, N]`, the last step's samples (no mask ids once the loop ends).
    history: int32 `[T, B, N]`, the map after each step's re-masking.
    """

    step: jax.Array
    rng: jax.Array
    codes: jax.Array
    final: jax.Array
    history: jax.Array


def mask_len_schedule(
    unknown_at_start: jax.Array,
    unknown_now: jax.Array,
    step: jax.Array,
    num_steps: int,
    schedule: str = "cosine",
) -> jax.Array:
    """How many tokens stay masked after `step`: `max(1, min(unknown_now - 1, floor(N0 * ratio)))`.

    Never more than `unknown_now` (a map with nothing unknown stays as it is). The "log" and
    "exp" schedules take their N from each example's N0, as the reference passes
    `unknown_number_in_the_beginning` (at least 2, where log2(N0) would be 0).

    Args:
      unknown_at_start: int `[B]`, N0 (masked tokens of the input map).
      unknown_now: int `[B]`, masked tokens before this step.
      step: int scalar, `t` in `[0, T)`.

    Returns:
      int32 `[B]`.
    """
    ratio = (step + 1.0) / num_steps
    mask_ratio = maskgit_schedule(ratio, schedule, num_tokens=jnp.maximum(unknown_at_start, 2))
    # The slack keeps float32 rounding from losing a token where the exact product is whole
    # (16 * cos(pi/3) is 8, float32 gives 7.9999995).
    scheduled = jnp.floor(unknown_at_start * mask_ratio + FLOOR_SLACK).astype(jnp.int32)
    mask_len = jnp.maximum(1, jnp.minimum(unknown_now - 1, scheduled))
    return jnp.minimum(mask_len, unknown_now).astype(jnp.int32)


def sample_codes(rng: jax.Array, logits: jax.Array, temperature: float) -> jax.Array:
    """Categorical samples of `logits / temperature` `[B, N, V] -> [B, N]`; temperature 0 = argmax."""
    if temperature == 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return jax.random.categorical(rng, logits / temperature, axis=-1).astype(jnp.int32)


def decode(
    codes: jax.Array,
    rng: jax.Array,
    tokens_to_logits: TokensToLogits,
    *,
    mask_id: int,
    num_steps: int = 8,
    choice_temperature: float = 4.5,
    sample_temperature: float = 1.0,
    schedule: str = "cosine",
) -> DecodeState:
    """Fill the masked positions of `codes` in `num_steps` parallel steps.

    Args:
      codes: int `[B, N]`; `mask_id` marks unknown positions (all of them for generation,
        some for editing / inpainting: given codes are never changed).
      rng: PRNG key.
      tokens_to_logits: `(codes [B, N], step) -> [B, N, V]` logits over the V codes
        (`mask_id` must not be one of them).
      mask_id: the mask token id.
      num_steps: T, static.
      choice_temperature: scale of the Gumbel noise on the log confidence, annealed by `1 - (t+1)/T`.
      sample_temperature: temperature of the code sampling (0 = argmax).
      schedule: a `mmjax.masking.MASKGIT_SCHEDULES` name.

    Returns:
      The final `DecodeState`: `final` `[B, N]` holds the decoded codes, `history` `[T, B, N]`
      the map after each step.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    codes = jnp.asarray(codes, jnp.int32)
    unknown_at_start = jnp.sum(codes == mask_id, axis=-1)

    def body(step: jax.Array, state: DecodeState) -> DecodeState:
        rng, sample_rng, choice_rng = jax.random.split(state.rng, 3)
        logits = tokens_to_logits(state.codes, step).astype(jnp.float32)
        unknown = state.codes == mask_id
        sampled = jnp.where(unknown, sample_codes(sample_rng, logits, sample_temperature), state.codes)
        log_probs = jax.nn.log_softmax(logits, axis=-1)
        confidence = jnp.take_along_axis(log_probs, sampled[..., None], axis=-1)[..., 0]
        ratio = (step + 1.0) / num_steps
        gumbel = jax.random.gumbel(choice_rng, confidence.shape)
        confidence = confidence + choice_temperature * (1.0 - ratio) * gumbel
        mask_len = mask_len_schedule(unknown_at_start, jnp.sum(unknown, axis=-1), step, num_steps, schedule)
        remask = select_lowest(confidence, unknown, mask_len)  # known codes are never re-masked
        next_codes = jnp.where(remask, mask_id, sampled)
        return DecodeState(
            step=step + 1,
            rng=rng,
            codes=next_codes,
            final=sampled,
            history=state.history.at[step].set(next_codes),
        )

    init = DecodeState(
        step=jnp.zeros((), jnp.int32),
        rng=rng,
        codes=codes,
        final=codes,
        history=jnp.zeros((num_steps, *codes.shape), jnp.int32),
    )
    return jax.lax.fori_loop(0, num_steps, body, init)
