"""Memory options of the transformer stack: `model.remat` and `model.scan` change memory, not values."""

import jax
import numpy as np
import pytest

from mmjax.methods.registry import build_method
from mmjax.models import stack_layers, unstack_layers
from mmjax.train import train
from tests.helpers import load_experiment

IMAGES = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype(np.float32)


def method_with(**model):
    config = load_experiment("mae_digits")
    config.model.update(model)
    return build_method(config)


def loss_and_grads(method, params):
    batch = {"image": IMAGES}
    return jax.jit(jax.value_and_grad(method.loss, has_aux=True))(params, batch, jax.random.key(1))


def assert_trees_close(a, b, atol):
    flat = jax.tree_util.tree_flatten_with_path(a)[0]
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for (path, x), y in zip(flat, jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), atol=atol, err_msg=jax.tree_util.keystr(path))


@pytest.mark.parametrize("remat", ["full", "dots"])
def test_remat_keeps_params_loss_and_grads(remat):
    plain, rematted = method_with(), method_with(remat=remat)
    params = plain.init(jax.random.key(0), {"image": IMAGES})
    assert_trees_close(params, rematted.init(jax.random.key(0), {"image": IMAGES}), atol=0)
    (loss, _), grads = loss_and_grads(plain, params)
    (loss_r, _), grads_r = loss_and_grads(rematted, params)
    np.testing.assert_allclose(float(loss_r), float(loss), rtol=1e-6)
    assert_trees_close(grads, grads_r, atol=1e-6)


def to_scanned(params):
    out = dict(params)
    for part in ("encoder", "decoder"):
        blocks = params[part]["blocks"]
        out[part] = {**params[part], "blocks": stack_layers(blocks, len(blocks))}
    return out


def test_scan_matches_the_unrolled_stack_with_transplanted_params():
    plain, scanned = method_with(), method_with(scan=True, remat="dots")
    params = plain.init(jax.random.key(0), {"image": IMAGES})
    own = scanned.init(jax.random.key(0), {"image": IMAGES})
    moved = to_scanned(params)
    assert jax.tree.structure(own) == jax.tree.structure(moved)
    assert own["encoder"]["blocks"]["layers"]["mlp"]["fc1"]["kernel"].shape == (2, 32, 64)
    assert scanned.param_axes()["encoder"]["blocks"]["layers"]["mlp"]["fc1"]["kernel"] == jax.sharding.PartitionSpec(
        "layers", "embed", "mlp"
    )
    (loss, _), grads = loss_and_grads(plain, params)
    (loss_s, _), grads_s = loss_and_grads(scanned, moved)
    np.testing.assert_allclose(float(loss_s), float(loss), rtol=1e-6)
    assert_trees_close(to_scanned(grads), grads_s, atol=1e-6)
    back = unstack_layers(moved["encoder"]["blocks"])
    assert_trees_close(params["encoder"]["blocks"], back, atol=0)


def test_scan_and_remat_train_sharded(tmp_path):
    config = load_experiment("mae_digits", "steps=2")
    config.train.update(batch_size=16, log_every=1, checkpoint_every=2, tensorboard=False)
    config.model.update(scan=True, remat="full")
    config.mesh.update(data=4, fsdp=2)
    result = train(config, str(tmp_path))
    kernel = result.state.params["encoder"]["blocks"]["layers"]["mlp"]["fc1"]["kernel"]
    assert tuple(kernel.sharding.spec)[:2] == (None, "fsdp")  # layers unsharded, embed over fsdp
    assert all(np.isfinite(row["loss"]) for row in result.history)


def test_bad_remat_names_the_field():
    with pytest.raises(ValueError, match="model.remat='sometimes': expected one of"):
        method_with(remat="sometimes")
