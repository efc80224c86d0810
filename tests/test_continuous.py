"""Continuous-token generation: the decoding loops, the VAE, the latent transformer's layouts, GIVT and MAR."""

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.generate import decode_causal, decode_masked, mask_len_schedule
from mmjax.losses import gaussian_kl
from mmjax.masking import truncated_normal_ratio
from mmjax.methods import build_method
from mmjax.models.config import TransformerConfig
from mmjax.models.latent_transformer import LatentTransformer

EXPERIMENT = pathlib.Path(__file__).parents[1] / "experiments" / "continuous_digits.py"


def experiment():
    spec = importlib.util.spec_from_file_location("continuous_digits", EXPERIMENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- Decoding loops ---------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["confidence", "random"])
def test_masked_decoding_keeps_given_tokens_and_reveals_the_schedules_count_per_step(order):
    batch, n, c, steps = 3, 16, 2, 5
    rng = np.random.default_rng(0)
    given = jnp.asarray(rng.normal(size=(batch, n, c)), jnp.float32)
    known = jnp.asarray(rng.random((batch, n)) < np.array([[0.0], [0.3], [0.6]]))
    calls = []

    def predict_fn(tokens, now_known, step, key):
        # A sample that says which step produced it; the confidence is random.
        calls.append(1)
        samples = jnp.full(tokens.shape, 100.0) + step.astype(jnp.float32)
        return samples, jax.random.uniform(key, now_known.shape)

    state = jax.jit(
        lambda t, k, r: decode_masked(t, k, r, predict_fn, num_steps=steps, order=order, choice_temperature=2.0)
    )(given, known, jax.random.key(1))
    tokens, history = np.asarray(state.tokens), np.asarray(state.history)
    known = np.asarray(known)
    np.testing.assert_array_equal(tokens[known], np.asarray(given)[known])  # given tokens never change
    assert np.asarray(state.known).all()

    # Known after each step: the start count plus what the schedule reveals, all at the last step.
    unknown0 = (~known).sum(-1)
    expected, unknown = [], unknown0.copy()
    for step in range(steps):
        stay = np.asarray(mask_len_schedule(jnp.asarray(unknown0), jnp.asarray(unknown), jnp.asarray(step), steps))
        stay = np.where(step == steps - 1, 0, stay)
        unknown = stay
        expected.append(n - stay)
    np.testing.assert_array_equal(history, np.stack(expected))
    # Each unknown token holds the sample of the step that revealed it (100 + step).
    revealed_at = (tokens[..., 0] - 100.0).round().astype(int)
    for b in range(batch):
        counts = np.bincount(revealed_at[b][~known[b]], minlength=steps)
        np.testing.assert_array_equal(counts, np.diff(np.concatenate([[known[b].sum()], history[:, b]])))


def test_causal_decoding_fills_blocks_in_raster_order_from_what_came_before():
    def block_fn(tokens, start, key):
        # The next block is 1 + the sum of everything generated so far (0 for later positions).
        return jnp.full((tokens.shape[0], 2, tokens.shape[2]), 1.0 + jnp.sum(tokens, axis=(1, 2))[:, None, None])

    out = np.asarray(decode_causal((2, 6, 1), jax.random.key(0), block_fn, block_size=2))
    # blocks: 1, then 1 + 2*1 = 3, then 1 + 2*1 + 2*3 = 9.
    np.testing.assert_allclose(out[0, :, 0], [1, 1, 3, 3, 9, 9])
    with pytest.raises(ValueError, match="block_size=4"):
        decode_causal((2, 6, 1), jax.random.key(0), block_fn, block_size=4)


def test_truncated_normal_ratios_stay_in_the_range_and_lean_to_one():
    ratios = np.asarray(truncated_normal_ratio(jax.random.key(0), 20000, 0.7))
    assert ratios.min() >= 0.7 and ratios.max() <= 1.0
    # N(1, 0.25) truncated to [0.7, 1]: more mass near 1 than near 0.7.
    assert np.mean(ratios > 0.85) > 0.5


# --- VAE --------------------------------------------------------------------------------------


def tiny_vae():
    config = experiment().vae_config(steps=1)
    config.model.update(width=16, depth=1, heads=2, mlp_dim=32)
    config.vae.update(decoder_depth=1)
    return config


def test_gaussian_kl_matches_the_closed_form():
    rng = np.random.default_rng(0)
    mean, logvar = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    var = np.exp(logvar)
    expected = 0.5 * np.sum(mean**2 + var - 1 - logvar, axis=-1)
    np.testing.assert_allclose(np.asarray(gaussian_kl(mean, logvar)), expected, rtol=1e-5)
    assert float(gaussian_kl(jnp.zeros(4), jnp.zeros(4))) == 0.0


def test_vae_loss_is_reconstruction_plus_beta_kl_and_tokens_round_trip():
    method = build_method(tiny_vae())
    images = jax.random.normal(jax.random.key(0), (4, 8, 8, 1))
    params = method.init(jax.random.key(1), {"image": images})
    loss, metrics = method.loss(params, {"image": images}, jax.random.key(2), train=False)
    np.testing.assert_allclose(float(loss), float(metrics["recon_loss"] + 1e-3 * metrics["kl"]), rtol=1e-6)
    latents = method.tokenize(params, images)
    assert latents.shape == (4, 4, 4, 4)  # a 4 x 4 grid of 4 channels
    mean, _ = method.posterior(params, images)
    np.testing.assert_array_equal(np.asarray(latents), np.asarray(mean))
    np.testing.assert_allclose(
        np.asarray(method.detokenize(params, latents)), np.asarray(method.forward(params, images)[0]), atol=1e-6
    )
    # Training decodes a posterior sample: a different reconstruction from the mean's.
    train_recon = method.forward(params, images, jax.random.key(3))[0]
    assert not np.allclose(np.asarray(train_recon), np.asarray(method.forward(params, images)[0]))


# --- The latent transformer -------------------------------------------------------------------


def latent_model(**kw):
    blocks = TransformerConfig(depth=2, heads=2, mlp_dim=32)
    base = dict(num_tokens=8, latent_dim=3, num_classes=4, width=16, transformer=blocks)
    return LatentTransformer(**{**base, **kw})


@pytest.mark.parametrize("block_size", [1, 2])
def test_causal_features_see_only_earlier_blocks(block_size):
    model = latent_model(style="causal", block_size=block_size)
    tokens = jax.random.normal(jax.random.key(0), (2, 8, 3))
    labels = jnp.array([1, 4])
    params = model.init(jax.random.key(1), tokens, None, labels)
    base = np.asarray(model.apply(params, tokens, None, labels))
    changed = np.asarray(model.apply(params, tokens.at[:, 4:].add(1.0), None, labels))
    # Positions up to the end of the block holding token 4 read only tokens before that block.
    first_block = 4 // block_size * block_size
    np.testing.assert_allclose(changed[:, : first_block + block_size], base[:, : first_block + block_size], atol=1e-5)
    assert not np.allclose(changed[:, first_block + block_size :], base[:, first_block + block_size :])
    other = np.asarray(model.apply(params, tokens, None, jnp.array([2, 4])))
    assert not np.allclose(other[0], base[0])  # the label conditions every position


@pytest.mark.parametrize("decoder_depth", [0, 2])
def test_masked_features_never_read_hidden_values(decoder_depth):
    model = latent_model(style="masked", decoder_depth=decoder_depth, buffer_size=2)
    tokens = jax.random.normal(jax.random.key(0), (2, 8, 3))
    hidden = jnp.zeros((2, 8), bool).at[:, ::3].set(True)
    labels = jnp.array([0, 1])
    params = model.init(jax.random.key(1), tokens, hidden, labels)
    base = np.asarray(model.apply(params, tokens, hidden, labels))
    noisy = tokens + 5.0 * hidden[..., None]
    np.testing.assert_allclose(np.asarray(model.apply(params, noisy, hidden, labels)), base, atol=1e-5)
    visible_changed = np.asarray(model.apply(params, tokens.at[:, 1].add(1.0), hidden, labels))
    assert not np.allclose(visible_changed, base)


# --- GIVT and MAR -----------------------------------------------------------------------------


def tiny_generator(stage, head=None, **variant):
    args = ",".join([f"stage={stage}", *(f"{k}={v}" for k, v in variant.items())])
    config = experiment().get_config(args)
    if head:
        config[stage].head = head
    config.model.update(width=16, depth=1, heads=2, mlp_dim=32)
    if config.model.decoder_depth:
        config.model.decoder_depth = 1
    config.head.update(num_components=2, width=16, depth=1, train_steps=50)
    config.sample.update(steps=3, diffusion_steps=4, num_proposals=8)
    tok = tiny_vae()
    config.tokenizer_config.model = tok.model
    config.tokenizer_config.vae = tok.vae
    return config


GENERATORS = [
    ("givt", {"style": "causal"}),
    ("givt", {"style": "masked"}),
    ("mar", {}),
    ("mar", {"head": "gmm"}),
]


@pytest.mark.parametrize("stage,variant", GENERATORS, ids=lambda v: str(v))
def test_generators_learn_from_latents_and_sample_every_token(stage, variant):
    config = tiny_generator(stage, **variant)
    method = build_method(config)
    images = jax.random.normal(jax.random.key(0), (4, 8, 8, 1))
    batch = {"image": images, "label": jnp.array([0, 1, 2, 3])}
    params = method.init(jax.random.key(1), batch)
    assert set(params) == {"transformer", "head", "tokenizer"}
    flags = method.trainable(params)
    assert not any(jax.tree.leaves(flags["tokenizer"])) and all(jax.tree.leaves(flags["head"]))

    if config[config.method].head == "diffusion":
        # MAR's denoiser starts at zero output, which blocks the gradient to the transformer at step 0;
        # nudge it off zero so both sides must receive a gradient.
        leaves, tree = jax.tree.flatten(params["head"])
        keys = jax.random.split(jax.random.key(9), len(leaves))
        nudged = [x + 0.05 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
        params = {**params, "head": jax.tree.unflatten(tree, nudged)}
    (loss, metrics), grads = jax.value_and_grad(method.loss, has_aux=True)(params, batch, jax.random.key(2))
    assert np.isfinite(float(loss))
    head_norm = sum(float(jnp.sum(g**2)) for g in jax.tree.leaves(grads["head"]))
    body_norm = sum(float(jnp.sum(g**2)) for g in jax.tree.leaves(grads["transformer"]))
    assert head_norm > 0 and body_norm > 0
    assert all(float(jnp.sum(g**2)) == 0 for g in jax.tree.leaves(grads["tokenizer"]))  # the VAE is frozen

    for guidance in (1.0, 2.0):
        sample = method.sampler(guidance=guidance)
        latents = np.asarray(sample(params, jax.random.key(3), jnp.array([1, 2])))
        assert latents.shape == (2, 4, 4, 4) and np.isfinite(latents).all()
    images = method.decode_images(params, jnp.asarray(latents))
    assert images.shape == (2, 8, 8, 1)


def test_masked_generators_inpaint_around_the_given_latents():
    config = tiny_generator("mar")
    method = build_method(config)
    batch = {"image": jnp.zeros((2, 8, 8, 1)), "label": jnp.array([0, 1])}
    params = method.init(jax.random.key(1), batch)
    given = jax.random.normal(jax.random.key(2), (2, 4, 4, 4))
    known = jnp.zeros((2, 4, 4), bool).at[:, :2].set(True)
    out = np.asarray(method.sampler()(params, jax.random.key(3), jnp.array([0, 1]), given, known))
    np.testing.assert_allclose(out[:, :2], np.asarray(given)[:, :2], rtol=1e-6, atol=1e-6)
    assert not np.allclose(out[:, 2:], np.asarray(given)[:, 2:])


def test_bad_combinations_fail_at_build_time():
    config = tiny_generator("mar")
    config.sample.order = "confidence"
    with pytest.raises(ValueError, match="order='confidence' needs a density"):
        build_method(config)
    config = tiny_generator("givt", style="causal")
    config.model.block_size = 3
    with pytest.raises(ValueError, match="block_size=3 must divide the 16 tokens"):
        build_method(config)
    with pytest.raises(ValueError, match="stage='maskgit'"):
        experiment().get_config("stage=maskgit")
