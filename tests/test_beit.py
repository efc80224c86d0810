import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmjax.data import presets
from mmjax.methods import BEiT, beit
from mmjax.models.transformer import TransformerStack
from mmjax.ops.posemb import sincos_2d
from mmjax.train import build_method, load_frozen
from mmjax.train.defaults import training_sections
from tests.test_vq import digits_batch
from tests.test_vq import tiny_config as tokenizer_config


def tiny_config(tokenizer_workdir=""):
    config = beit.default_config()
    config.model.update(size=None, image_size=8, patch_size=2, channels=1, width=32, depth=1, heads=4, mlp_dim=64)
    config.beit.update(tokenizer_workdir=tokenizer_workdir, mask_ratio=0.4)
    return config


def tiny_beit(**tokenizer_options):
    tokenizer = build_method(tokenizer_config(**tokenizer_options))
    return BEiT.from_config(tiny_config(), tokenizer=tokenizer)


def test_mask_token_enters_exactly_at_hidden_patches():
    method = tiny_beit()
    batch = digits_batch(4)
    params = jax.jit(method.init)(jax.random.key(0), batch)
    rng = jax.random.key(3)
    mask = method.make_mask(rng, 4).mask
    hidden = np.asarray(mask)
    assert method.num_masked == 6 and method.min_block == 1  # 0.4 of 16 patches; 16/196 of 16 rounds to 1
    assert (hidden.sum(1) >= 1).all() and (hidden.sum(1) <= 6).all()
    # The transformer's input, less the position table, is the mask token at hidden patches only.
    seen = []

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, TransformerStack) and context.method_name == "__call__":
            seen.append(args[0])
        return next_fun(*args, **kwargs)

    @jax.jit
    def predict_and_record(params, batch, rng):
        with nn.intercept_methods(record):
            return (*method.predict(params, batch, rng), seen[-1])

    logits, used, stack_input = predict_and_record(params, batch, rng)
    np.testing.assert_array_equal(used.mask, mask)
    tokens = np.asarray(stack_input)[:, 1:] - sincos_2d((4, 4), 32)[None]
    token = np.asarray(params["model"]["encoder"]["mask_token"]).reshape(32)
    np.testing.assert_allclose(tokens[hidden], np.tile(token, (hidden.sum(), 1)), atol=1e-5)
    assert np.abs(tokens[~hidden] - token).max(1).min() > 1e-3
    # So scribbling over hidden pixels changes nothing, and changing visible ones does.
    pixel_hidden = np.repeat(np.repeat(hidden.reshape(4, 4, 4), 2, 1), 2, 2)[..., None]
    image = np.asarray(batch["image"])
    scribbled = predict_and_record(params, {"image": jnp.asarray(np.where(pixel_hidden, 50.0, image))}, rng)[0]
    np.testing.assert_allclose(scribbled, logits, atol=1e-5)
    moved = predict_and_record(params, {"image": jnp.asarray(np.where(pixel_hidden, image, image + 1.0))}, rng)[0]
    assert np.abs(np.asarray(moved) - np.asarray(logits))[hidden].max() > 1e-3


def test_loss_is_cross_entropy_on_hidden_patches_only():
    method = tiny_beit()
    batch = digits_batch(4)
    params = jax.jit(method.init)(jax.random.key(0), batch)
    rng = jax.random.key(1)
    loss, metrics = jax.jit(method.loss)(params, batch, rng)
    logits, mask = jax.jit(method.predict)(params, batch, rng)
    targets = np.asarray(method.tokenizer.tokenize(params["tokenizer"], batch["image"])).reshape(4, 16)
    np.testing.assert_array_equal(method.targets(params, batch["image"]), targets)
    logp = np.asarray(jax.nn.log_softmax(logits))
    ce = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]
    hidden = np.asarray(mask.mask)
    np.testing.assert_allclose(float(loss), ce[hidden].mean(), rtol=1e-5)
    assert abs(ce[hidden].mean() - ce.mean()) > 1e-4  # visible patches would change the value
    assert float(metrics["mask_ratio"]) == pytest.approx(hidden.mean())


@pytest.mark.slow  # long: kept out of CI's 15-minute budget; run with -m slow
def test_a_few_steps_reduce_the_loss_and_leave_the_tokenizer_alone():
    method = tiny_beit(quantizer="fsq")
    batch = digits_batch(32)
    params = jax.jit(method.init)(jax.random.key(0), batch)
    opt = optax.multi_transform({True: optax.adamw(3e-3), False: optax.set_to_zero()}, method.trainable(params))
    state = opt.init(params)

    @jax.jit
    def step(params, state, key):
        (loss, _), grads = jax.value_and_grad(method.loss, has_aux=True)(params, batch, key)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    loss_fn = jax.jit(method.loss)
    key = jax.random.key(9)
    before = float(loss_fn(params, batch, key)[0])
    new = params
    for i in range(30):
        new, state = step(new, state, jax.random.fold_in(key, i))
    after = float(loss_fn(new, batch, key)[0])
    assert after < 0.7 * before, (before, after)
    jax.tree.map(np.testing.assert_array_equal, new["tokenizer"], params["tokenizer"])
    assert method.features(new, batch["image"], pool="mean").shape == (32, 32)
    out = method.reconstruct(new, batch, key)
    assert out["prediction"].shape == out["pasted"].shape == out["masked"].shape == (32, 8, 8, 1)


def run_config(config, steps):
    config = training_sections(config)
    config.data = presets.digits()
    config.train.update(steps=steps, batch_size=16, log_every=1, tensorboard=False, async_checkpoints=False)
    return config


@pytest.mark.slow  # long: kept out of CI's 15-minute budget; run with -m slow
def test_load_frozen_copies_a_tokenizer_run(tmp_path):
    from mmjax.train import train

    tok_dir = str(tmp_path / "tok")
    tok_result = train(run_config(tokenizer_config(), steps=1), tok_dir, devices=jax.devices()[:1])
    tok_params = jax.device_get(tok_result.state.params)
    assert float(tok_params["quantizer"]["usage"].min()) < 1.0  # the trainer ran after_step
    assert {"codebook_usage", "perplexity", "restarted_codes"} <= set(tok_result.history[0])
    method = build_method(tiny_config(tok_dir))  # reads the run's config.json
    assert method.tokenizer.vocab_size == 16
    fresh = method.init(jax.random.key(0), {"image": jnp.zeros((1, 8, 8, 1))})
    loaded = load_frozen(method, fresh)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(loaded["tokenizer"]), tok_params)
    jax.tree.map(np.testing.assert_array_equal, loaded["model"], fresh["model"])


@pytest.mark.slow
def test_beit_trains_on_a_tokenizer_run_and_keeps_it_frozen(tmp_path):
    from mmjax.export import export_workdir, load_encoder
    from mmjax.train import load_trained, train

    tok_dir, beit_dir = str(tmp_path / "tok"), str(tmp_path / "beit")
    train(run_config(tokenizer_config(), steps=2), tok_dir, devices=jax.devices()[:1])
    result = train(run_config(tiny_config(tok_dir), steps=2), beit_dir, devices=jax.devices()[:1])
    assert all(np.isfinite(row["loss"]) for row in result.history)
    _, _, tok_params = load_trained(tok_dir)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(result.state.params["tokenizer"]), tok_params)
    # The checkpoint holds the tokenizer and the workdir its config (read_runs.json): with the tokenizer's
    # workdir deleted, the run restores, resumes and exports its encoder.
    shutil.rmtree(tok_dir)
    _, _, params = load_trained(beit_dir)
    jax.tree.map(np.testing.assert_array_equal, params["tokenizer"], tok_params)
    assert train(run_config(tiny_config(tok_dir), steps=3), beit_dir, devices=jax.devices()[:1]).step == 3
    load_encoder(export_workdir(beit_dir, "safetensors", tmp_path / "encoder"))


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ValueError, match="beit.tokenizer_workdir is empty"):
        build_method(tiny_config())
    with pytest.raises(FileNotFoundError, match="beit.tokenizer_workdir="):
        build_method(tiny_config(str(tmp_path / "missing")))
    coarse = tokenizer_config()
    coarse.model.patch_size = 4
    with pytest.raises(ValueError, match=r"token grid \(2, 2\).*BEiT patch grid \(4, 4\)"):
        BEiT.from_config(tiny_config(), tokenizer=build_method(coarse))
    config = tiny_config()
    config.beit.mask_ratio = 1.0
    with pytest.raises(ValueError, match="beit.mask_ratio"):
        BEiT.from_config(config, tokenizer=build_method(tokenizer_config()))


def test_beit_encoder_options_are_config_knobs():
    config = tiny_config()
    # What the command line sets (`--config.model.rel_pos_bias=shared`): BEiT's own encoder.
    config.model.update(posemb="none", rel_pos_bias="shared", layer_scale=0.1, key_bias=False)
    method = BEiT.from_config(config, tokenizer=build_method(tokenizer_config()))
    batch = digits_batch(2)
    params = jax.jit(method.init)(jax.random.key(0), batch)
    encoder = params["model"]["encoder"]
    assert "pos_embedding" not in encoder and encoder["rel_pos_bias"]["table"].shape == (7 * 7 + 3, 4)
    block = encoder["blocks"]["block_0"]
    np.testing.assert_array_equal(block["gamma_1"], np.full(32, 0.1, np.float32))
    assert "bias" not in block["attn"]["key"] and "bias" in block["attn"]["query"]
    loss, _ = jax.jit(method.loss)(params, batch, jax.random.key(1))
    assert np.isfinite(float(loss))
    config.model.rel_pos_bias = "everywhere"
    with pytest.raises(
        ValueError, match=r"model.rel_pos_bias='everywhere': expected one of \('none', 'shared', 'layer'\)"
    ):
        BEiT.from_config(config, tokenizer=build_method(tokenizer_config()))
