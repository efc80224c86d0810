import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from mmjax.masking import random_mask_from_noise
from mmjax.methods import MAE, available_methods, build_method, mae


def tiny_config(**mae_options) -> ml_collections.ConfigDict:
    config = mae.default_config()
    config.model.update(size=None, image_size=16, patch_size=4, channels=3, width=32, depth=2, heads=4, mlp_dim=64)
    config.decoder.update(width=16, depth=1, heads=2, mlp_dim=32)
    config.mae.update(**mae_options)
    return config


def batch(seed=0, b=4):
    return {"image": jax.random.normal(jax.random.key(seed), (b, 16, 16, 3))}


def test_registry_builds_mae_by_name():
    assert "mae" in available_methods()
    method = build_method(tiny_config())
    assert isinstance(method, MAE) and method.model_config.num_patches == 16
    config = tiny_config()
    config.method = "nope"
    with pytest.raises(ValueError, match="config.method='nope'.*available"):
        build_method(config)


def test_size_table_fills_the_model():
    config = mae.default_config()
    method = build_method(config)
    assert (method.model_config.width, method.model_config.depth, method.model_config.heads) == (768, 12, 12)
    config.model.size = "large"
    assert build_method(config).model_config.width == 1024
    config.model.size = "gigantic"
    with pytest.raises(ValueError, match="model.size must be one of"):
        build_method(config)


def test_config_errors_name_the_field():
    config = tiny_config()
    config.model.widht = 64
    with pytest.raises(ValueError, match="model.widht"):
        build_method(config)
    config = tiny_config()
    config.model.heads = 5
    with pytest.raises(ValueError, match="model.width=32 must be a positive multiple of model.heads=5"):
        build_method(config)
    config = tiny_config()
    config.model.patch_size = 5
    with pytest.raises(ValueError, match="not divisible by patch_size"):
        build_method(config)
    with pytest.raises(ValueError, match="mae.mask_ratio"):
        build_method(tiny_config(mask_ratio=1.0))


def test_params_and_axes_have_the_same_tree():
    method = build_method(tiny_config())
    params = method.init(jax.random.key(0), batch())
    axes = method.param_axes()
    assert jax.tree.structure(params) == jax.tree.structure(
        axes, is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec)
    )
    assert axes["encoder"]["blocks"]["block_0"]["mlp"]["fc1"]["kernel"] == jax.sharding.PartitionSpec("embed", "mlp")
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))
    # MAE's init: cls and mask tokens ~ normal(0.02); no position table is stored for sincos.
    assert 0.005 < float(jnp.std(params["encoder"]["cls_token"])) < 0.05
    assert "pos_embedding" not in params["encoder"]


def test_wrong_image_shape_names_the_config():
    method = build_method(tiny_config())
    with pytest.raises(ValueError, match="model.image_size=\\(16, 16\\), model.channels=3"):
        method.init(jax.random.key(0), {"image": jnp.zeros((2, 16, 16, 1))})
    with pytest.raises(KeyError, match="'image'"):
        method.init(jax.random.key(0), {"pixels": jnp.zeros((2, 16, 16, 3))})


@pytest.mark.slow  # 20 s here; CI budget
def test_loss_is_finite_when_nothing_is_masked():
    method = build_method(tiny_config(mask_ratio=0.0))
    params = method.init(jax.random.key(0), batch())
    (loss, metrics), grads = jax.value_and_grad(method.loss, has_aux=True)(params, batch(), jax.random.key(1))
    assert float(loss) == 0.0 and float(metrics["mask_ratio"]) == 0.0
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))


def test_noise_reproduces_the_mask_and_rng_changes_it():
    method = build_method(tiny_config())
    params = method.init(jax.random.key(0), batch())
    noise = jax.random.uniform(jax.random.key(3), (4, 16))
    a, _ = method.loss(params, batch(), jax.random.key(1), noise=noise)
    b, _ = method.loss(params, batch(), jax.random.key(2), noise=noise)
    c, _ = method.loss(params, batch(), jax.random.key(2))
    assert float(a) == float(b) and float(a) != float(c)


def test_bf16_compute_keeps_float32_params_and_loss():
    config = tiny_config()
    params = build_method(config).init(jax.random.key(0), batch())
    f32_loss, _ = build_method(config).loss(params, batch(), jax.random.key(1))
    config.model.dtype = "bfloat16"
    method = build_method(config)
    loss, _ = jax.jit(method.loss)(params, batch(), jax.random.key(1))
    assert loss.dtype == jnp.float32
    np.testing.assert_allclose(float(loss), float(f32_loss), rtol=3e-2)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(method.init(jax.random.key(0), batch())))


def test_reconstruct_pastes_visible_patches_and_predicts_hidden_ones():
    method = build_method(tiny_config())
    params = method.init(jax.random.key(0), batch())
    noise = jax.random.uniform(jax.random.key(4), (4, 16))
    out = method.reconstruct(params, batch(), jax.random.key(0), noise=noise)
    images = np.asarray(batch()["image"])
    hidden = np.asarray(random_mask_from_noise(noise, 0.75).mask)
    np.testing.assert_array_equal(np.asarray(out["mask"]), hidden)
    pixel_hidden = np.repeat(np.repeat(hidden.reshape(4, 4, 4), 4, axis=1), 4, axis=2)[..., None]
    np.testing.assert_allclose(
        np.where(pixel_hidden, 0, np.asarray(out["pasted"])), np.where(pixel_hidden, 0, images), atol=1e-6
    )
    np.testing.assert_array_equal(np.where(pixel_hidden, 0, images), np.asarray(out["masked"]))
    assert out["prediction"].shape == images.shape


def test_features_pooling():
    method = build_method(tiny_config())
    params = method.init(jax.random.key(0), batch())
    images = batch()["image"]
    assert method.features(params, images).shape == (4, 32)
    assert method.features(params, images, pool="mean").shape == (4, 32)
    tokens = method.features(params, images, pool="tokens")
    assert tokens.shape == (4, 17, 32)
    np.testing.assert_allclose(np.asarray(method.features(params, images)), np.asarray(tokens[:, 0]))
    with pytest.raises(ValueError, match="pool must be"):
        method.features(params, images, pool="max")


def test_a_few_adam_steps_reduce_the_loss():
    method = build_method(tiny_config())
    # Smooth images (coarse noise, upsampled): hidden patches are predictable from visible ones.
    coarse = jax.random.normal(jax.random.key(5), (8, 2, 2, 3))
    data = {"image": jax.image.resize(coarse, (8, 16, 16, 3), "bilinear")}
    params = method.init(jax.random.key(0), data)
    opt = optax.adam(3e-3)
    state = opt.init(params)
    noise = jax.random.uniform(jax.random.key(9), (8, 16))

    @jax.jit
    def step(params, state):
        (loss, _), grads = jax.value_and_grad(method.loss, has_aux=True)(params, data, jax.random.key(0), noise=noise)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    losses = []
    for _ in range(60):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0], losses[::10]
