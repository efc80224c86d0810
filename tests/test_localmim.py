"""LocalMIM (`localmim.blocks`): intermediate encoder blocks reconstruct finer-scale targets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.config import ConfigError
from mmjax.losses import masked_loss, masked_mse, normalize_patches
from mmjax.methods import build_method
from mmjax.methods.local_mim import subregion_norm_pixels
from mmjax.models.config import TransformerConfig
from mmjax.models.transformer import TransformerStack
from mmjax.ops.patches import patchify
from mmjax.targets import make_target
from tests.test_parts import tiny_mae_config


def local_config(blocks=(1,), regions=(2,)):
    config = tiny_mae_config()
    config.model.depth = 2
    config.localmim.update(blocks=blocks, regions=regions, decoder_width=16, decoder_heads=2)
    return config


def test_subregion_targets_normalize_each_region_of_a_patch():
    images = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
    got = np.asarray(subregion_norm_pixels(images, (4, 4), 2)).reshape(2, 4, 4, 4, 3)  # [B, N, row, col, C]
    x = np.asarray(images)
    # Patch 1 (top row, second patch), sub-region (1, 0): pixels rows 2-3, columns 4-5.
    region = x[0, 2:4, 4:6, :].reshape(-1)
    want = (region - region.mean()) / np.sqrt(region.var(ddof=1) + 1e-6)
    np.testing.assert_allclose(got[0, 1, 2:4, 0:2, :].reshape(-1), want, rtol=1e-5, atol=1e-6)
    # A region the size of the patch is MAE's norm-pix target.
    np.testing.assert_allclose(
        np.asarray(subregion_norm_pixels(images, (4, 4), 4)),
        np.asarray(normalize_patches(patchify(images, (4, 4)))),
        rtol=1e-6,
    )


def test_the_stack_returns_every_blocks_output_by_name():
    stack = TransformerStack(config=TransformerConfig(depth=3, heads=2, mlp_dim=16))
    x = jax.random.normal(jax.random.key(1), (2, 5, 8))
    params = stack.init(jax.random.key(0), x)
    y, out = stack.apply(params, x)
    assert sorted(out) == ["block1", "block2", "block3"]
    np.testing.assert_array_equal(np.asarray(out["block3"]), np.asarray(y))
    one, _ = TransformerStack(config=TransformerConfig(depth=1, heads=2, mlp_dim=16)).apply(
        {"params": {"block_0": params["params"]["block_0"]}}, x
    )
    np.testing.assert_allclose(np.asarray(out["block1"]), np.asarray(one), rtol=1e-6)
    scanned = TransformerStack(config=TransformerConfig(depth=3, heads=2, mlp_dim=16, scan=True))
    assert scanned.apply(scanned.init(jax.random.key(0), x), x)[1] == {}  # a scanned stack names no block


def test_the_loss_adds_the_weighted_local_losses():
    method = build_method(local_config())
    images = jax.random.normal(jax.random.key(0), (4, 16, 16, 1))
    batch = {"image": images}
    params = method.init(jax.random.key(0), batch)
    assert "decoders_0" in params["localmim"] and "norms_0" in params["localmim"]
    loss, metrics = method.loss(params, batch, jax.random.key(2))
    mask = method.make_mask(jax.random.key(2), 4)
    pred, out = method.model.apply({"params": params}, images, mask)
    (local,) = method.term("localmim").module.apply({"params": params["localmim"]}, out, mask.ids_restore)
    recon = masked_loss(method.loss_part, pred, make_target(method.target_part, images, 4), mask.mask)
    fine = masked_mse(local, subregion_norm_pixels(images, (4, 4), 2), mask.mask)
    np.testing.assert_allclose(float(metrics["local_loss_block_1"]), float(fine), rtol=1e-5)
    np.testing.assert_allclose(float(loss), float(recon + fine), rtol=1e-5)
    grads = jax.grad(lambda p: method.loss(p, batch, jax.random.key(2))[0])(params)
    assert float(jnp.abs(grads["localmim"]["decoders_0"]["pred"]["kernel"]).max()) > 0


def test_bad_local_settings_are_named():
    for blocks, regions, match in [
        ((1, 2), (2,), "one region per block"),
        ((3,), (2,), r"1\.\.2"),
        ((1,), (3,), "tile the"),
    ]:
        with pytest.raises(ConfigError, match=match):
            build_method(local_config(blocks, regions))
    config = local_config()
    config.model.scan = True
    with pytest.raises(ConfigError, match="model.scan=False"):
        build_method(config)
