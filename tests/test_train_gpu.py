"""MAE training on a real GPU: bf16 numerics, checkpoint and resume; skipped without a GPU.

Run on a GPU machine with `JAX_PLATFORMS=cuda pytest -m gpu tests/test_train_gpu.py`
(`benchmarks/gpu_suite.sh` does this).
"""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.data import train_dataset
from mmjax.methods import build_method
from mmjax.train import load_trained, train
from tests.helpers import load_experiment

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(jax.devices()[0].platform != "gpu", reason="needs a GPU"),
]


def tiny(steps, dtype="bfloat16"):
    config = load_experiment("mae_digits", f"steps={steps}")
    config.train.update(batch_size=32, log_every=1, checkpoint_every=3, tensorboard=False)
    config.eval.protocols = ()
    config.model.dtype = dtype
    return config


def test_bf16_mae_loss_tracks_float32_on_gpu():
    batch = next(iter(train_dataset(tiny(1).data, 32, seed=0)))
    data = {"image": jnp.asarray(batch["image"], jnp.float32) / 255.0}
    losses, grads = {}, {}
    for dtype in ("float32", "bfloat16"):
        method = build_method(tiny(1, dtype))
        params = method.init(jax.random.key(0), data)
        loss_fn = lambda p, m=method: m.loss(p, data, jax.random.key(1))  # noqa: E731
        (loss, _), grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(params)
        losses[dtype], grads[dtype] = float(loss), grad
        assert params["encoder"]["patch_embed"]["kernel"].device.platform == "gpu"
    assert np.isfinite(losses["bfloat16"])
    # Same parameters and mask: bf16 matmuls move the loss by well under 2%.
    assert abs(losses["bfloat16"] - losses["float32"]) < 0.02 * abs(losses["float32"])
    a = np.concatenate([np.ravel(x) for x in jax.tree.leaves(grads["float32"])])
    b = np.concatenate([np.ravel(x) for x in jax.tree.leaves(grads["bfloat16"])])
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert cosine > 0.98, cosine


def test_mae_steps_checkpoint_and_resume_on_gpu(tmp_path, capsys):
    straight = train(tiny(6), str(tmp_path / "straight"))
    assert [row["step"] for row in straight.history] == [1, 2, 3, 4, 5, 6]
    assert straight.history[-1]["loss"] < straight.history[0]["loss"]
    checkpoints = tmp_path / "straight" / "checkpoints"
    assert sorted(int(d.name) for d in checkpoints.iterdir() if d.name.isdigit()) == [3, 6]

    # A run that stopped after its step-3 checkpoint: the same files without step 6.
    shutil.copytree(tmp_path / "straight", tmp_path / "stopped")
    shutil.rmtree(tmp_path / "stopped" / "checkpoints" / "6")
    capsys.readouterr()
    resumed = train(tiny(6), str(tmp_path / "stopped"))
    assert "resumed from step 3" in capsys.readouterr().out
    assert [row["step"] for row in resumed.history] == [4, 5, 6]
    # It continues the same data stream and optimizer state: it lands where the
    # uninterrupted run does (to GPU reduction round-off).
    np.testing.assert_allclose(
        [row["loss"] for row in resumed.history],
        [row["loss"] for row in straight.history[3:]],
        rtol=1e-3,
    )
    _, _, a = load_trained(str(tmp_path / "straight"))
    _, _, b = load_trained(str(tmp_path / "stopped"))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), atol=1e-4)
