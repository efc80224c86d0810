import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmjax.data import train_dataset
from mmjax.data.transforms import normalize_images
from mmjax.losses import masked_l1
from mmjax.masking import replace_with_mask_token
from mmjax.methods import SimMIM, build_method, simmim
from tests.helpers import load_experiment


def tiny_config(**options):
    config = simmim.default_config()
    config.model.update(size=None, image_size=8, patch_size=2, channels=1, width=32, depth=2, heads=4, mlp_dim=64)
    config.simmim.update(**{"mask_ratio": 0.5, "mask_patch": 2, **options})
    return config


def digits_batch(b=32):
    data = load_experiment("mae_digits").data
    batch = next(iter(train_dataset(data, b, seed=0)))
    return {"image": normalize_images(jnp.asarray(batch["image"]), data.mean, data.std)}


def test_mask_token_replaces_exactly_the_hidden_tokens():
    tokens = jax.random.normal(jax.random.key(0), (2, 5, 3))
    hidden = jnp.array([[True, False, False, True, False], [False, False, False, False, True]])
    out = replace_with_mask_token(tokens, hidden, jnp.array([7.0, 8.0, 9.0]))
    np.testing.assert_array_equal(np.asarray(out)[np.asarray(hidden)], np.tile([7.0, 8.0, 9.0], (3, 1)))
    np.testing.assert_array_equal(np.asarray(out)[~np.asarray(hidden)], np.asarray(tokens)[~np.asarray(hidden)])


@pytest.mark.parametrize("head_depth", [0, 1])
def test_hidden_pixels_cannot_leak_into_the_prediction(head_depth):
    method = build_method(tiny_config(head_depth=head_depth))
    batch = digits_batch(4)
    params = method.init(jax.random.key(0), batch)
    assert params["encoder"]["mask_token"].shape == (1, 1, 32)
    # The paper's linear head, or transformer blocks and a LayerNorm before it.
    assert ("head_blocks" in params) == bool(head_depth) and ("head_norm" in params) == bool(head_depth)
    rng = jax.random.key(5)
    pred, mask = method.predict(params, batch, rng)
    hidden = np.asarray(mask.mask)
    assert (hidden.sum(1) == 8).all()  # 2 of 4 mask cells of 2x2 tokens on a 4x4 grid
    # Scribbling over hidden patches changes nothing: they enter the encoder as the mask token.
    pixel_hidden = np.repeat(np.repeat(hidden.reshape(4, 4, 4), 2, 1), 2, 2)[..., None]
    scribbled = np.where(pixel_hidden, 100.0, np.asarray(batch["image"]))
    pred2, _ = method.predict(params, {"image": jnp.asarray(scribbled)}, rng)
    np.testing.assert_allclose(np.asarray(pred2), np.asarray(pred), atol=1e-6)
    # Changing a visible patch does change the prediction of the hidden ones.
    visible_pixels = np.where(pixel_hidden, np.asarray(batch["image"]), np.asarray(batch["image"]) + 1.0)
    pred3, _ = method.predict(params, {"image": jnp.asarray(visible_pixels)}, rng)
    assert np.abs(np.asarray(pred3) - np.asarray(pred))[hidden].max() > 1e-3


def test_loss_is_l1_on_hidden_patches_only():
    method = build_method(tiny_config())
    batch = digits_batch(4)
    params = method.init(jax.random.key(0), batch)
    loss, metrics = method.loss(params, batch, jax.random.key(1))
    pred, mask = method.predict(params, batch, jax.random.key(1))
    target = np.asarray(batch["image"]).reshape(4, 4, 2, 4, 2, 1)
    target = target.transpose(0, 1, 3, 2, 4, 5).reshape(4, 16, 4)
    errors = np.abs(np.asarray(pred) - target).mean(-1)
    np.testing.assert_allclose(float(loss), errors[np.asarray(mask.mask)].mean(), rtol=1e-5)
    assert float(metrics["mask_ratio"]) == pytest.approx(0.5)
    assert float(masked_l1(pred, jnp.asarray(target), jnp.zeros((4, 16), bool))) == 0.0


def test_a_grid_the_mask_cells_do_not_tile_still_trains_on_hidden_patches_only():
    # 6 px images of 2 px tokens: a 3x3 grid under 2x2-token cells (edge cells are cut).
    config = tiny_config()
    config.model.image_size = 6
    method = build_method(config)
    batch = {"image": digits_batch(4)["image"][:, 1:7, 1:7]}
    params = method.init(jax.random.key(0), batch)
    loss, _ = method.loss(params, batch, jax.random.key(2))
    pred, mask = method.predict(params, batch, jax.random.key(2))
    hidden = np.asarray(mask.mask)
    assert hidden.shape == (4, 9) and hidden.any(1).all() and not hidden.all(1).any()
    target = np.asarray(batch["image"]).reshape(4, 3, 2, 3, 2, 1).transpose(0, 1, 3, 2, 4, 5).reshape(4, 9, 4)
    errors = np.abs(np.asarray(pred) - target).mean(-1)
    np.testing.assert_allclose(float(loss), errors[hidden].mean(), rtol=1e-5)


def test_config_errors_name_the_field():
    config = tiny_config()
    config.simmim.mask_patch = 0
    with pytest.raises(ValueError, match="simmim.mask_patch must be a positive number of tokens, got 0"):
        build_method(config)
    with pytest.raises(ValueError, match="simmim.mask_ratio"):
        build_method(tiny_config(mask_ratio=1.0))
    with pytest.raises(ValueError, match="simmim.head_depth must be >= 0 transformer blocks, got -1"):
        build_method(tiny_config(head_depth=-1))


def test_a_few_steps_on_bundled_digits_reduce_the_loss():
    method = build_method(tiny_config())
    assert isinstance(method, SimMIM)
    batch = digits_batch(64)
    params = method.init(jax.random.key(0), batch)
    opt = optax.adamw(2e-3, weight_decay=0.05)
    state = opt.init(params)

    @jax.jit
    def step(params, state, key):
        (loss, _), grads = jax.value_and_grad(method.loss, has_aux=True)(params, batch, key)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    eval_key = jax.random.key(99)
    before = float(method.loss(params, batch, eval_key)[0])
    for i in range(60):
        params, state, _ = step(params, state, jax.random.fold_in(eval_key, i))
    after = float(method.loss(params, batch, eval_key)[0])
    assert after < 0.7 * before, (before, after)
    out = method.reconstruct(params, batch, eval_key)
    assert out["prediction"].shape == (64, 8, 8, 1)
    assert method.features(params, batch["image"], pool="mean").shape == (64, 32)


def test_simmim_experiment_trains_through_the_trainer(tmp_path):
    from mmjax.train import train

    config = load_experiment("simmim_mnist", "steps=4")
    config.train.update(batch_size=16, log_every=2, tensorboard=False)
    result = train(config, str(tmp_path), devices=jax.devices()[:1])
    assert [row["step"] for row in result.history] == [2, 4]
    assert all(np.isfinite(row["loss"]) for row in result.history)
    assert result.history[0]["mask_ratio"] == pytest.approx(10 / 16)  # ceil(0.6 * 16 cells) hidden
