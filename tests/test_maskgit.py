"""MaskGIT: the parallel decode loop against the reference rules, guidance, inpainting, training."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmjax.generate import decode, guidance_scale, guided_tokens_to_logits
from mmjax.methods import maskgit
from tests.helpers import load_experiment

VOCAB, N = 8, 16
MASK_ID = VOCAB


def toy_logits_tables(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(VOCAB + 1, VOCAB)), rng.normal(size=(N, VOCAB)), rng.normal(size=(VOCAB + 1, VOCAB))


def toy_logits_np(codes, tables):
    """A deterministic logits function of the whole map: own-token, position and mean-context terms."""
    own, pos, ctx = tables
    return 2.0 * own[codes] + pos[None] + ctx[codes].mean(axis=1, keepdims=True)


def toy_logits_jax(tables):
    own, pos, ctx = (jnp.asarray(t, jnp.float32) for t in tables)

    def tokens_to_logits(codes, step):
        del step
        return 2.0 * own[codes] + pos[None] + ctx[codes].mean(axis=1, keepdims=True)

    return tokens_to_logits


def reference_decode_np(codes, logits_fn, num_steps):
    """NumPy transcription of MaskGIT's `libml/parallel_decode.decode` with choice temperature 0 and argmax sampling."""
    codes = codes.copy()
    unknown_at_start = (codes == MASK_ID).sum(-1)
    history = []
    for step in range(num_steps):
        logits = logits_fn(codes)
        sampled = logits.argmax(-1)
        unknown = codes == MASK_ID
        sampled = np.where(unknown, sampled, codes)
        ratio = (step + 1) / num_steps
        mask_ratio = np.clip(np.cos(math.pi / 2 * ratio), 1e-6, 1.0)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        selected = np.take_along_axis(probs, sampled[..., None], -1)[..., 0]
        selected = np.where(unknown, selected, np.inf)
        mask_len = np.floor(unknown_at_start * mask_ratio)[:, None]
        mask_len = np.maximum(1, np.minimum(unknown.sum(-1, keepdims=True) - 1, mask_len)).astype(int)
        # mask_by_random_topk with temperature 0: confidence = log(p); re-mask below the mask_len-th smallest.
        confidence = np.log(selected)
        cut_off = np.take_along_axis(np.sort(confidence, -1), mask_len, -1)
        masking = confidence < cut_off
        codes = np.where(masking, MASK_ID, sampled)
        history.append(codes)
        final = sampled
    return final, np.stack(history)


def scheduled_mask_lens(unknown_at_start, num_steps):
    """The re-mask count after each step, from the reference formula (cosine)."""
    lens, unknown = [], unknown_at_start
    for step in range(num_steps):
        ratio = (step + 1) / num_steps
        scheduled = int(np.floor(unknown_at_start * max(math.cos(math.pi / 2 * ratio), 1e-6)))
        length = min(max(1, min(unknown - 1, scheduled)), unknown)
        lens.append(length)
        unknown = length
    return lens


@pytest.mark.parametrize("num_steps", [1, 4, 7])
def test_decode_unmasks_the_scheduled_number_per_step_and_ends_with_none_masked(num_steps):
    tables = toy_logits_tables()
    start = np.full((3, N), MASK_ID, np.int32)
    start[1, :5] = [1, 2, 3, 4, 5]  # a partial map: N0 = 11
    state = jax.jit(
        lambda c, k: decode(c, k, toy_logits_jax(tables), mask_id=MASK_ID, num_steps=num_steps, choice_temperature=4.5)
    )(start, jax.random.key(0))
    history = np.asarray(state.history)
    final = np.asarray(state.final)
    for b in range(3):
        masked_after = (history[:, b] == MASK_ID).sum(-1)
        expected = scheduled_mask_lens(int((start[b] == MASK_ID).sum()), num_steps)
        np.testing.assert_array_equal(masked_after, expected)
        # Revealed codes never change afterwards.
        for t in range(num_steps):
            shown = history[t, b] != MASK_ID
            np.testing.assert_array_equal(history[t, b][shown], final[b][shown])
    assert not np.any(final == MASK_ID)
    assert final.min() >= 0 and final.max() < VOCAB


@pytest.mark.parametrize("schedule", ["log", "exp"])
def test_log_and_exp_schedules_count_from_each_examples_masked_tokens(schedule):
    # The reference passes `unknown_number_in_the_beginning` as the schedule's N: with 6 of 64
    # tokens masked, the log schedule leaves 5, 4, 3, 2, 1, 1, 1, 1 masked (N = 64 would give 3, 2, 1, ...).
    def reference_lens(n0, num_steps):
        lens, unknown = [], n0
        for step in range(num_steps):
            t = (step + 1) / num_steps
            ratio = -math.log2(t) / math.log2(n0) if schedule == "log" else 1 - 2 ** (-math.log2(n0) * (1 - t))
            scheduled = int(np.floor(n0 * min(max(ratio, 1e-6), 1.0) + 1e-4))
            unknown = min(max(1, min(unknown - 1, scheduled)), unknown)
            lens.append(unknown)
        return lens

    start = np.zeros((2, 64), np.int32)
    start[0, :6] = MASK_ID
    start[1, :40] = MASK_ID
    state = decode(
        start,
        jax.random.key(0),
        lambda c, t: jnp.zeros((*c.shape, VOCAB)),
        mask_id=MASK_ID,
        num_steps=8,
        schedule=schedule,
    )
    masked_after = (np.asarray(state.history) == MASK_ID).sum(-1).T
    np.testing.assert_array_equal(masked_after[0], reference_lens(6, 8))
    np.testing.assert_array_equal(masked_after[1], reference_lens(40, 8))
    if schedule == "log":
        assert masked_after[0].tolist() == [5, 4, 3, 2, 1, 1, 1, 1]


def test_decode_at_temperature_zero_matches_a_numpy_transcription_of_the_reference():
    tables = toy_logits_tables(seed=1)
    start = np.full((4, N), MASK_ID, np.int32)
    start[2, ::3] = np.arange(6) % VOCAB  # inpainting-style start
    start[3, :15] = 3  # a single unknown token
    num_steps = 6
    state = decode(
        start,
        jax.random.key(3),
        toy_logits_jax(tables),
        mask_id=MASK_ID,
        num_steps=num_steps,
        choice_temperature=0.0,
        sample_temperature=0.0,
    )
    final, history = reference_decode_np(start, lambda c: toy_logits_np(c, tables), num_steps)
    np.testing.assert_array_equal(np.asarray(state.history), history)
    np.testing.assert_array_equal(np.asarray(state.final), final)


def tiny_method(**maskgit_fields):
    config = maskgit.default_config()
    config.model.update(width=32, depth=1, heads=2, mlp_dim=64)
    config.maskgit.update(vocab_size=VOCAB, token_grid=(4, 4), num_classes=3, **maskgit_fields)
    return maskgit.MaskGIT.from_config(config)


@pytest.fixture(scope="module")
def tiny_params():
    """Params of `tiny_method()` (the same shapes for every option), initialized once."""
    return jax.jit(tiny_method().init)(jax.random.key(0), {})


def test_guidance_scale_zero_is_the_unconditional_logits(tiny_params):
    method, params = tiny_method(), tiny_params
    codes = jax.random.randint(jax.random.key(1), (2, N), 0, VOCAB + 1)
    labels = jnp.array([0, 2])
    logits = jax.jit(method.logits)

    def logits_fn(current, conditional):
        return logits(params, current, labels if conditional else jnp.full_like(labels, method.null_class))

    uncond = logits_fn(codes, False)
    assert not np.allclose(uncond, logits_fn(codes, True), atol=1e-4)  # the class does change the logits
    np.testing.assert_allclose(guided_tokens_to_logits(logits_fn, 8, 0.0)(codes, 3), uncond, atol=1e-6)
    np.testing.assert_allclose(guided_tokens_to_logits(logits_fn, 8, 1.0)(codes, 3), logits_fn(codes, True), atol=1e-6)
    # Scheduled scales: linear reaches the full scale at the last step.
    np.testing.assert_allclose(guidance_scale(jnp.arange(4), 4, 2.0, "linear"), [0.5, 1.0, 1.5, 2.0])
    # End to end: guidance 0 with any labels samples exactly what the null class samples.
    guided = method.sampler(num_steps=3, guidance=0.0)(params, jax.random.key(5), labels)
    null = method.sampler(num_steps=3, guidance=1.0)(params, jax.random.key(5), jnp.full_like(labels, 3))
    np.testing.assert_array_equal(guided, null)


def test_mask_token_never_in_the_output_and_inpainting_keeps_given_codes(tiny_params):
    method, params = tiny_method(), jax.tree.map(jnp.asarray, tiny_params)
    # Push the mask id's embedding so hard that a model able to emit it would.
    params["transformer"]["token_embed"]["embedding"] = (
        params["transformer"]["token_embed"]["embedding"].at[MASK_ID].set(10.0)
    )
    labels = jnp.arange(12) % 3
    sample = method.sampler(num_steps=3, guidance=3.0)
    given = np.asarray(jax.random.randint(jax.random.key(9), (12, N), 0, VOCAB))
    keep = np.array(jax.random.bernoulli(jax.random.key(8), 0.5, (12, N)))
    keep[:4] = False  # the first four generate from an all-masked map
    out = np.asarray(sample(params, jax.random.key(1), labels, np.where(keep, given, MASK_ID))).reshape(12, N)
    assert not np.any(out == MASK_ID) and out.min() >= 0 and out.max() < VOCAB
    np.testing.assert_array_equal(out[keep], given[keep])


@pytest.mark.slow  # long: kept out of CI's 15-minute budget; run with -m slow
def test_a_few_training_steps_reduce_the_masked_loss_on_random_code_maps(tiny_params):
    method = tiny_method(min_mask_rate=0.3, cond_dropout=0.0, label_smoothing=0.0)
    rng = np.random.default_rng(0)
    batch = {"codes": jnp.asarray(rng.integers(0, VOCAB, (6, 4, 4)), jnp.int32), "label": jnp.arange(6) % 3}
    params = tiny_params
    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, key):
        grads, metrics = jax.grad(method.loss, has_aux=True)(params, batch, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, metrics

    @jax.jit
    def eval_loss(params):  # the same 8 masks before and after
        keys = jax.random.split(jax.random.key(100), 8)
        return jnp.mean(jax.vmap(lambda k: method.loss(params, batch, k, train=False)[0])(keys))

    before = eval_loss(params)
    for i in range(40):
        params, opt_state, metrics = step(params, opt_state, jax.random.key(i))
    after = float(eval_loss(params))
    before = float(before)
    assert before > math.log(VOCAB) - 0.3  # starts near chance
    assert after < 0.6 * before
    assert 0.3 <= float(metrics["mask_ratio"]) <= 1.0


def test_label_smoothing_loss_is_the_formula_on_masked_codes(tiny_params):
    method, params = tiny_method(label_smoothing=0.1, cond_dropout=0.0), tiny_params
    batch = {"codes": jax.random.randint(jax.random.key(2), (2, 4, 4), 0, VOCAB), "label": jnp.array([0, 1])}
    key = jax.random.key(7)
    loss, _ = jax.jit(method.loss)(params, batch, key)
    ratio_key, mask_key, _ = jax.random.split(key, 3)
    ratios = np.asarray(maskgit.sample_mask_ratio(ratio_key, 2, "cosine"))
    hidden = np.asarray(maskgit.ratio_mask(mask_key, N, ratios).mask)
    codes = np.asarray(batch["codes"]).reshape(2, N)
    logits = jax.jit(method.logits)(params, jnp.where(hidden, MASK_ID, codes), batch["label"])
    logits = np.asarray(logits, np.float64)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    target = np.full((2, N, VOCAB), 0.1 / VOCAB)
    target[np.arange(2)[:, None], np.arange(N)[None], codes] += 0.9
    expected = (-(target * log_p).sum(-1) * hidden).sum() / hidden.sum()
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_cross_attention_context_conditions_and_length_zero_drops_it():
    config = maskgit.default_config()
    config.model.update(width=32, depth=1, heads=2, mlp_dim=64, context_dim=5)
    config.maskgit.update(vocab_size=VOCAB, token_grid=(4, 4), num_classes=0)
    method = maskgit.MaskGIT.from_config(config)
    params = jax.jit(method.init)(jax.random.key(0), {})
    codes = jnp.full((2, N), MASK_ID)
    a, b = jax.random.normal(jax.random.key(1), (2, 2, 3, 5))
    full, none = jnp.array([3, 3]), jnp.array([0, 0])
    logits = jax.jit(lambda context, lengths: method.logits(params, codes, None, context, lengths))
    assert not np.allclose(logits(a, full), logits(b, full))
    np.testing.assert_allclose(logits(a, none), logits(b, none), atol=1e-6)
    out = method.generate(params, jax.random.key(0), None, context=a, context_lengths=full, num_steps=2, guidance=2.0)
    assert out.shape == (2, 4, 4) and not np.any(np.asarray(out) == MASK_ID)


def test_the_default_transformer_is_the_papers():
    # MaskGIT's bidirectional transformer: 24 layers, 8 heads, 768 wide, MLP 3072.
    model = maskgit.default_config().model
    assert (model.depth, model.heads, model.width, model.mlp_dim) == (24, 8, 768, 3072)
    assert load_experiment("maskgit_imagenet").model.heads == 8  # the ImageNet recipe takes the defaults


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="maskgit.schedule"):
        tiny_method(schedule="quartic")
    with pytest.raises(ValueError, match="maskgit.cond_dropout"):
        tiny_method(cond_dropout=1.5)
    with pytest.raises(ValueError, match="num_steps"):
        logits_fn = toy_logits_jax(toy_logits_tables())
        decode(jnp.zeros((1, N), jnp.int32), jax.random.key(0), logits_fn, mask_id=8, num_steps=0)
