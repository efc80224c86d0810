import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from mmjax.data import train_dataset
from mmjax.evaluate import evaluate_pretraining
from mmjax.evaluate.report import load_report
from mmjax.train import NonFiniteLossError, compile_train_step, load_trained, train
from tests.helpers import ROOT, load_experiment
from tests.xla_flags import xla_flags


def tiny(steps=6, **train):
    config = load_experiment("mae_digits", f"steps={steps}")
    config.train.update(batch_size=16, log_every=1, checkpoint_every=3, tensorboard=False, **train)
    config.eval.protocols = ()
    return config


def test_sharded_data4_fsdp2_matches_one_device(tmp_path):
    assert len(jax.devices()) == 8
    single = train(tiny(), str(tmp_path / "one"), devices=jax.devices()[:1])
    config = tiny()
    config.mesh.update(data=4, fsdp=2)
    sharded = train(config, str(tmp_path / "eight"))
    kernel = sharded.state.params["encoder"]["blocks"]["block_0"]["mlp"]["fc1"]["kernel"]
    assert "fsdp" in str(kernel.sharding.spec)  # parameters really are split over fsdp
    losses = [[row["loss"] for row in r.history] for r in (single, sharded)]
    assert len(losses[0]) == 6
    # Same math, different reduction order across devices: agree to float32 round-off.
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5, atol=1e-6)
    # Parameters agree to 1e-6, except the attention key biases: softmax is invariant to
    # them, so their true gradient is 0 and Adam scales pure round-off noise up to +-lr.
    flat = jax.tree_util.tree_flatten_with_path(single.state.params)[0]
    for (path, a), b in zip(flat, jax.tree.leaves(sharded.state.params), strict=True):
        name = jax.tree_util.keystr(path)
        if "['key']['bias']" not in name:
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-6, err_msg=name)


def test_nan_in_a_batch_stops_with_the_step_and_keeps_the_last_checkpoint(tmp_path):
    config = tiny(steps=10)
    stream = iter(train_dataset(config.data, 16, seed=0))

    def batches():
        for step in range(1, 100):
            batch = next(stream)
            images = batch["image"].astype(np.float32) / 255.0
            if step == 5:
                images[0, 0, 0, 0] = np.nan
            yield {"image": images, "label": batch["label"]}

    with pytest.raises(NonFiniteLossError, match="step 5: loss=nan.*last good checkpoint is step 3"):
        train(config, str(tmp_path), data_iterator=batches(), devices=jax.devices()[:1])
    _, _, params = load_trained(str(tmp_path))
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(params))
    steps = sorted(int(d) for d in os.listdir(tmp_path / "checkpoints") if d.isdigit())
    assert steps == [3]


def run_cli(workdir, *overrides, env=None):
    cmd = [
        sys.executable,
        "-m",
        "mmjax",
        "train",
        "--config",
        "experiments/mae_digits.py",
        "--workdir",
        str(workdir),
    ]
    return subprocess.Popen(
        [*cmd, *overrides], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture
def one_device_env():
    env = dict(os.environ)
    env["XLA_FLAGS"] = xla_flags()
    return env


def test_bad_override_names_the_field(tmp_path, one_device_env):
    proc = run_cli(tmp_path, "--config.model.depht=2", env=one_device_env)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "depht" in out


def test_metrics_and_config_are_written(tmp_path):
    train(tiny(steps=4), str(tmp_path), devices=jax.devices()[:1])
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for key in ("loss", "lr", "grad_norm", "mask_ratio", "examples_per_s", "step_time"):
        assert key in rows[0]
    assert rows[0]["mask_ratio"] == pytest.approx(0.75)
    assert rows[0]["lr"] == 0.0 and rows[1]["lr"] > 0.0  # warmup starts at zero


def test_every_steps_evaluates_during_training_at_checkpointed_steps(tmp_path, capsys):
    config = tiny(steps=5)
    config.train.checkpoint_every = 100
    config.eval.update(protocols=("knn",), every_steps=2)
    config.eval.knn.k = 5
    result = train(config, str(tmp_path), devices=jax.devices()[:1])
    out = capsys.readouterr().out
    assert "evaluating mae (step 2): knn" in out and "evaluating mae (step 4): knn" in out
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["step"] == 4 and [e["step"] for e in report["history"]] == [2, 4]  # the last step: the caller's
    assert {r["protocol"] for e in report["history"] for r in e["results"]} == {"kNN"}
    assert {"2", "4", "5"} <= set(os.listdir(tmp_path / "checkpoints"))  # an evaluated step is saved too
    evaluate_pretraining(config, result.method, result.state.params, str(tmp_path), step=result.step)
    assert [e["step"] for e in load_report(str(tmp_path))["history"]] == [2, 4, 5]


@pytest.mark.parametrize("size", ["base", "large", "huge"])
def test_imagenet_recipe_resolves(size):
    config = load_experiment("mae_vit_imagenet", f"size={size}")
    assert config.train.batch_size == 4096
    assert config.train.lr == pytest.approx(1.5e-4 * 4096 / 256)
    assert config.train.warmup_steps == 40 * (1_281_167 // 4096)
    assert config.train.steps == 800 * (1_281_167 // 4096)
    assert (config.train.b1, config.train.b2, config.train.weight_decay) == (0.9, 0.95, 0.05)
    assert config.mae.mask_ratio == 0.75 and config.mae.norm_pix_loss
    assert tuple(config.data.crop_scale) == (0.2, 1.0) and config.data.flip


def test_imagenet_recipe_compiles_at_a_tiny_override():
    config = load_experiment("mae_vit_imagenet", "size=base")
    config.model.update(size="tiny", image_size=32, patch_size=16, depth=1)
    config.decoder.update(width=32, depth=1, heads=2, mlp_dim=64)
    config.data.image_size = (32, 32)
    config.train.batch_size = 8
    compiled = compile_train_step(config)
    flops = compiled.cost_analysis()
    flops = flops[0] if isinstance(flops, list) else flops
    assert flops["flops"] > 0
