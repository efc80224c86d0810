import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.evaluate import evaluate_pretraining, linear_probe
from mmjax.train import decay_mask, learning_rate_schedule, load_trained, make_mesh, train
from mmjax.train.mesh import mesh_shape
from tests.helpers import load_experiment


def test_mesh_shape_fills_minus_one_and_rejects_bad_sizes():
    assert mesh_shape({"data": -1, "fsdp": 2}, 8) == (4, 2, 1)
    assert mesh_shape({"data": 2, "fsdp": 2, "tensor": 2}, 8) == (2, 2, 2)
    with pytest.raises(ValueError, match="needs 6 devices, found 8"):
        mesh_shape({"data": 3, "fsdp": 2}, 8)
    with pytest.raises(ValueError, match="unknown mesh axis"):
        mesh_shape({"model": 2}, 8)
    mesh = make_mesh({"data": -1, "fsdp": 2})
    assert dict(mesh.shape) == {"data": 4, "fsdp": 2, "tensor": 1}


def test_weight_decay_skips_biases_norms_tokens_and_position_tables():
    params = {
        "encoder": {
            "cls_token": 0,
            "pos_embedding": 0,
            "patch_embed": {"kernel": 0, "bias": 0},
            "norm": {"scale": 0, "bias": 0},
            "blocks": {"block_0": {"norm1": {"scale": 0}, "mlp": {"fc1": {"kernel": 0}}}},
        },
        "decoder": {"mask_token": 0},
    }
    mask = decay_mask(params)
    assert mask["encoder"]["patch_embed"] == {"kernel": True, "bias": False}
    assert mask["encoder"]["blocks"]["block_0"] == {"norm1": {"scale": False}, "mlp": {"fc1": {"kernel": True}}}
    assert not mask["encoder"]["cls_token"] and not mask["encoder"]["pos_embedding"]
    assert not mask["decoder"]["mask_token"] and not mask["encoder"]["norm"]["scale"]


def test_schedule_warms_up_linearly_then_follows_half_cosine():
    config = load_experiment("mae_digits").train
    config.update(lr=1.0, warmup_steps=10, steps=110, min_lr=0.0)
    lr = learning_rate_schedule(config)
    assert float(lr(0)) == 0.0 and float(lr(5)) == pytest.approx(0.5)
    assert float(lr(10)) == pytest.approx(1.0)
    assert float(lr(60)) == pytest.approx(0.5, abs=1e-6)  # half way through the cosine
    assert float(lr(110)) == pytest.approx(0.0, abs=1e-6)


def test_linear_probe_separates_separable_data_and_not_noise():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(10, 16)) * 3
    y = rng.integers(0, 10, 600)
    x = centers[y] + rng.normal(size=(600, 16))
    assert linear_probe(x[:500], y[:500], x[500:], y[500:], steps=300) > 0.95
    noise_labels = rng.integers(0, 10, 600)
    assert linear_probe(x[:500], noise_labels[:500], x[500:], noise_labels[500:], steps=300) < 0.3


def test_end_of_run_evaluation_writes_probe_table_and_figure(tmp_path, capsys):
    from PIL import Image

    config = load_experiment("mae_digits", "steps=4")
    config.train.update(batch_size=16, tensorboard=False)
    config.eval.linear_probe.steps = 100
    result = train(config, str(tmp_path), devices=jax.devices()[:1])
    results = evaluate_pretraining(config, result.method, result.state.params, str(tmp_path), step=4)
    probe = {r.name: r for r in results if r.protocol == "linear probe"}
    assert set(probe) == {"mae encoder", "random encoder", "raw pixels"}
    assert probe["raw pixels"].value > 0.8 and probe["raw pixels"].baseline  # digits are nearly linearly separable
    assert not probe["mae encoder"].baseline
    out = capsys.readouterr().out
    assert "| linear probe | test | raw pixels (baseline) | accuracy |" in out
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["step"] == 4 and saved["files"] == {"figure": "reconstructions.png"}
    assert [r["value"] for r in saved["results"]] == [r.value for r in results]
    assert (tmp_path / "eval.md").read_text().count("| linear probe |") == 3
    figure = Image.open(tmp_path / "reconstructions.png")
    assert figure.size[0] > figure.size[1] > 0  # 8 columns and a label column, 4 rows
    # `eval` reloads exactly the trained parameters from the checkpoint.
    _, _, params = load_trained(str(tmp_path))
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), params, result.state.params)
    assert jnp.isfinite(result.history[-1]["loss"])
