"""Generation over continuous tokens: masked (MaskGIT / MAR order) and block-causal (GIVT) loops.

`decode_masked` is MaskGIT's schedule over real-valued tokens. At step `t` of `T` every
unknown token is sampled by `predict_fn`; the `mask_len` lowest-scoring unknown tokens stay
unknown (the same `mask_len_schedule` as the discrete decoder), the others are kept. Scores
are the model's confidence plus annealed Gumbel noise (GIVT's masked variant, MaskGIT's
ordering), or a fixed random priority drawn once (MAR's random order). The last step keeps
every sample, so nothing stays unknown; given tokens are never changed.

`decode_causal` fills `block_size` tokens per step in raster order (GIVT-causal: one token per
step; block-causal next-block prediction with more).

`sample_tokens` is GIVT / MAR sampling on top of either loop: a model's features (conditional and,
for classifier-free guidance, unconditional, in one batched pass) read by a per-token head that
draws the samples; the model and the head come in as functions.

Both run a `lax.fori_loop` with fixed shapes: one compile under `jit`.
"""

from __future__ import annotations

from collections.abc import Callable

import flax
import jax
import jax.numpy as jnp

from mmjax.generate.decode import mask_len_schedule
from mmjax.generate.guidance import guidance_scale
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


# features_fn(tokens [B, N, C], hidden [B, N] | None, labels [B]) -> features [B, N, W].
FeaturesFn = Callable[[jax.Array, jax.Array | None, jax.Array], jax.Array]
# head_fn(rng, cond [M, W], uncond [M, W] | None, scale) -> (samples [M, C], log-density [M]).
HeadFn = Callable[[jax.Array, jax.Array, jax.Array | None, jax.Array | float], tuple[jax.Array, jax.Array]]


def sample_tokens(
    features_fn: FeaturesFn,
    head_fn: HeadFn,
    rng: jax.Array,
    labels: jax.Array,
    *,
    shape: tuple[int, int],
    null_class: int,
    block_size: int | None = None,
    num_steps: int = 1,
    schedule: str = "cosine",
    order: str = "confidence",
    choice_temperature: float = 0.0,
    guidance: float = 1.0,
    guidance_schedule: str = "constant",
    tokens: jax.Array | None = None,
    known: jax.Array | None = None,
) -> jax.Array:
    """Continuous tokens `[B, N, C]` for class `labels` `[B]`, GIVT / MAR style.

    Args:
      features_fn: the model, `(tokens, hidden, labels) -> [B, N, W]` (`hidden` None when causal).
      head_fn: the head, `(rng, cond, uncond, scale) -> (samples, log-density)` over rows `[M, W]`;
        `uncond` None means no guidance.
      shape: `(N, C)`.
      null_class: the label of the unconditional features.
      block_size: causal decoding with this many tokens per step (`decode_causal`); None = masked
        decoding in `num_steps` steps (`decode_masked` with `schedule`, `order`, `choice_temperature`).
      guidance, guidance_schedule: classifier-free guidance (`guidance_scale`); 1 and `constant` = none.
      tokens, known: masked decoding from these tokens `[B, N, C]`, keeping the `known` `[B, N]` ones
        (inpainting); None = from scratch.

    Returns:
      float32 `[B, N, C]`.
    """
    labels = jnp.asarray(labels, jnp.int32)
    batch, (num_tokens, dim) = labels.shape[0], shape
    guided = not (guidance == 1.0 and guidance_schedule == "constant")
    total = num_tokens // block_size if block_size else num_steps

    def features_pair(tokens, hidden):
        """Conditional and (guided) unconditional features, one batched pass: `[B, N, W]` each."""
        if not guided:
            return features_fn(tokens, hidden, labels), None
        both = features_fn(
            jnp.concatenate([tokens, tokens]),
            None if hidden is None else jnp.concatenate([hidden, hidden]),
            jnp.concatenate([labels, jnp.full_like(labels, null_class)]),
        )
        return jnp.split(both, 2)

    def head_on(rng, cond, uncond, step):
        scale = guidance_scale(step, total, guidance, guidance_schedule) if guided else 1.0
        rows = cond.shape[0] * cond.shape[1]
        flat = None if uncond is None else uncond.reshape(rows, -1)
        samples, log_prob = head_fn(rng, cond.reshape(rows, -1), flat, scale)
        return samples.reshape(*cond.shape[:2], dim), log_prob.reshape(cond.shape[:2])

    if block_size:

        def block_fn(tokens, start, key):
            cond, uncond = features_pair(tokens, None)
            cut = lambda f: None if f is None else jax.lax.dynamic_slice_in_dim(f, start, block_size, axis=1)  # noqa: E731
            return head_on(key, cut(cond), cut(uncond), start // block_size)[0]

        return decode_causal((batch, num_tokens, dim), rng, block_fn, block_size=block_size)

    def predict_fn(tokens, now_known, step, key):
        cond, uncond = features_pair(tokens, ~now_known)
        return head_on(key, cond, uncond, step)

    return decode_masked(
        jnp.zeros((batch, num_tokens, dim)) if tokens is None else tokens,
        jnp.zeros((batch, num_tokens), bool) if known is None else known,
        rng,
        predict_fn,
        num_steps=num_steps,
        schedule=schedule,
        order=order,
        choice_temperature=choice_temperature,
    ).tokens


__all__ = ["ORDERS", "ContinuousDecodeState", "FeaturesFn", "HeadFn", "decode_causal", "decode_masked", "sample_tokens"]
