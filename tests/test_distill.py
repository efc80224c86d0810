"""Feature distillation: the teacher comes from a finished run and stays frozen; losses on the right tokens."""

import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.data import presets
from mmjax.export import export_workdir, load_encoder, load_feature_extractor
from mmjax.methods import distill
from mmjax.train import build_method, checkpoint, load_frozen, load_trained, train
from mmjax.train.defaults import training_sections
from mmjax.train.loop import config_as_dict, create_state
from mmjax.train.mesh import make_mesh
from tests.feature_helpers import digit_images, run_steps
from tests.helpers import ROOT, load_experiment
from tests.xla_flags import xla_flags

STEPS = 20


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """An MAE run's workdir on the 8 x 8 digits (config.json + a checkpoint of its fresh state): the teacher."""
    config = load_experiment("mae_digits")
    config.model.update(width=16, depth=1, heads=2, mlp_dim=32)
    config.decoder.update(width=16, depth=1, heads=2, mlp_dim=32)
    workdir = str(tmp_path_factory.mktemp("teacher"))
    init_state, *_ = create_state(config, build_method(config), make_mesh({"data": 1}, jax.devices()[:1]))
    checkpoint.write_config(workdir, config_as_dict(config))
    manager = checkpoint.checkpoint_manager(workdir, async_save=False)
    checkpoint.save(manager, 7, init_state(), None, config_as_dict(config))
    manager.wait_until_finished()
    manager.close()
    return workdir


def student_config(teacher_dir, mode="maskdistill", loss="smooth_l1", patch=2):
    config = training_sections(distill.default_config())
    config.model.update(size=None, image_size=8, patch_size=patch, channels=1, width=16, depth=1, heads=2, mlp_dim=32)
    config.distill.update(teacher_workdir=teacher_dir, mode=mode, loss=loss, mask_ratio=0.5, masking="random")
    config.data = presets.digits()
    config.train.update(steps=STEPS, lr=3e-3, warmup_steps=2)
    return config


@pytest.fixture(scope="module")
def method(teacher_dir):
    return build_method(student_config(teacher_dir))


@pytest.fixture(scope="module")
def images():
    return digit_images(16)


@pytest.fixture(scope="module")
def params(method, images):
    return load_frozen(method, jax.jit(method.init)(jax.random.key(0), {"image": images}))


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_teacher_is_the_finished_run_and_frozen(method, params, teacher_dir):
    _, _, saved = load_trained(teacher_dir)
    for a, b in zip(leaves(params["teacher"]), leaves(saved), strict=True):
        np.testing.assert_array_equal(a, b)
    trainable = method.trainable(params)
    assert not any(jax.tree.leaves(trainable["teacher"])) and all(jax.tree.leaves(trainable["student"]))
    assert method.teacher_dim == 16  # the teacher's encoder width


def test_steps_leave_the_teacher_bitwise_unchanged_and_reduce_the_loss(method, params, images):
    config = student_config("unused")
    (before, after, grads, _), final, losses = run_steps(method, config.train, params, images, STEPS)
    assert all(np.all(g == 0) for g in leaves(grads["teacher"]))
    for a, b, c in zip(leaves(after["teacher"]), leaves(final["teacher"]), leaves(before["teacher"]), strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)
    assert any(
        not np.array_equal(a, b) for a, b in zip(leaves(final["student"]), leaves(before["student"]), strict=True)
    )
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:3]), losses


def numpy_loss(pred, target, weights, kind):
    pred, target, weights = (np.asarray(a, np.float64) for a in (pred, target, weights))
    if kind == "smooth_l1":
        d = np.abs(pred - target)
        per_token = np.where(d < 1.0, 0.5 * d**2, d - 0.5).mean(-1)
    else:
        cos = (pred * target).sum(-1) / (np.linalg.norm(pred, axis=-1) * np.linalg.norm(target, axis=-1))
        per_token = 1.0 - cos
    return (per_token * weights).sum() / weights.sum()


@pytest.mark.parametrize(
    ("mode", "kind"), [("maskdistill", "smooth_l1"), ("maskdistill", "cosine"), ("maskalign", "smooth_l1")]
)
def test_loss_counts_hidden_tokens_for_maskdistill_and_visible_for_maskalign(teacher_dir, params, images, mode, kind):
    method = build_method(student_config(teacher_dir, mode, kind))
    if mode == "maskalign":  # the visible-only student has no mask token
        params = {**params, "student": jax.jit(method.init)(jax.random.key(0), {"image": images})["student"]}
    rng = jax.random.key(3)
    mask = method.make_mask(rng, images.shape[0])

    @jax.jit
    def run(p):
        return (
            method.loss(p, {"image": images}, rng)[0],
            method.predict(p, images, mask),
            method.teacher_tokens(p, images),
        )

    loss, (pred, target, weights), teacher = run(params)
    hidden = np.asarray(mask.mask)
    if mode == "maskdistill":
        assert pred.shape == teacher.shape and hidden.any() and not hidden.all()
        np.testing.assert_array_equal(weights, hidden)  # hidden positions only
        np.testing.assert_array_equal(target, teacher)
    else:
        keep = np.asarray(mask.ids_keep)
        assert pred.shape == (images.shape[0], keep.shape[1], teacher.shape[-1])
        assert not hidden[np.arange(len(keep))[:, None], keep].any()  # aligned tokens are the visible ones
        np.testing.assert_array_equal(target, np.take_along_axis(np.asarray(teacher), keep[..., None], axis=1))
        assert np.all(np.asarray(weights))
    np.testing.assert_allclose(loss, numpy_loss(pred, target, weights, kind), rtol=1e-5)
    # Teacher targets are LayerNorm-ed without affine.
    np.testing.assert_allclose(np.asarray(teacher).mean(-1), 0.0, atol=1e-5)


def test_grid_mismatch_and_missing_teacher_are_named(teacher_dir):
    with pytest.raises(ValueError, match=r"teacher/student token grids differ.*model.patch_size"):
        build_method(student_config(teacher_dir, patch=4))
    with pytest.raises(ValueError, match="distill.teacher_workdir is empty"):
        build_method(student_config(""))
    with pytest.raises(FileNotFoundError, match="distill.teacher_workdir"):
        build_method(student_config(teacher_dir + "/nowhere"))
    with pytest.raises(ValueError, match="distill.masking='blockwise' with mode='maskalign'"):
        config = student_config(teacher_dir, mode="maskalign")
        config.distill.masking = "blockwise"
        build_method(config)


def test_student_features_ignore_the_teacher(method, params, images):
    features = jax.jit(lambda p: method.features(p, images, pool="mean"))
    other = {**params, "teacher": jax.tree.map(jnp.zeros_like, params["teacher"])}
    np.testing.assert_array_equal(features(params), features(other))
    assert features(params).shape == (images.shape[0], 16)


def test_a_student_resumes_evaluates_and_exports_after_its_teacher_is_deleted(teacher_dir, tmp_path, capsys):
    # The student's checkpoints hold the teacher's parameters, and its workdir keeps the teacher's config
    # (read_runs.json). Before: with the teacher's workdir gone, resume, eval and export all failed on its
    # missing config.json.
    teacher, student = tmp_path / "teacher", str(tmp_path / "student")
    shutil.copytree(teacher_dir, teacher)
    config = student_config(str(teacher))
    config.train.update(steps=4, checkpoint_every=2, batch_size=16, log_every=2, tensorboard=False)
    config.eval.batch_size = 256
    config.eval.linear_probe.steps = 5
    train(config, student, devices=jax.devices()[:1])
    shutil.rmtree(teacher)
    config.train.steps = 6
    capsys.readouterr()
    result = train(config, student, devices=jax.devices()[:1])
    assert result.step == 6 and "resumed from step 4" in capsys.readouterr().out
    env = {**os.environ, "XLA_FLAGS": xla_flags(1), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "mmjax", "eval", "--workdir", student]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "linear probe" in done.stdout, done.stdout + done.stderr
    _, method, params = load_trained(student, devices=jax.devices()[:1])
    images = digit_images(4)
    for fmt in ("safetensors", "stablehlo"):
        export_workdir(student, fmt, tmp_path / fmt)
    _, encoder = load_encoder(tmp_path / "safetensors")
    assert "mask_token" not in encoder  # the student's training-only mask token is left out
    extract = load_feature_extractor(tmp_path / "stablehlo")
    np.testing.assert_allclose(extract(np.asarray(images)), method.features(params, images), atol=1e-5)
