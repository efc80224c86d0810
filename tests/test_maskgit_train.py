"""MaskGIT through the trainer: a frozen tokenizer loaded from its run, then `sample` from the workdir."""

import importlib.util
import pathlib

import jax
import numpy as np
import pytest
from PIL import Image

from mmjax.evaluate.generation import conditioning_accuracy, frechet_distance
from mmjax.generate.sample import sample_workdir
from mmjax.train import load_trained, train

EXPERIMENT = pathlib.Path(__file__).parents[1] / "experiments" / "maskgit_digits.py"


def experiment():
    spec = importlib.util.spec_from_file_location("maskgit_digits", EXPERIMENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shrink(config, steps):
    config.train.update(steps=steps, batch_size=16, log_every=1, checkpoint_every=100)
    config.train.update(async_checkpoints=False, tensorboard=False, warmup_steps=0)
    return config


@pytest.mark.slow  # two training compiles and a restore: about a minute on 2 idle cores
def test_maskgit_trains_on_a_frozen_tokenizer_and_samples_a_png(tmp_path):
    exp = experiment()
    tok_config = shrink(exp.get_config("stage=tokenizer"), steps=1)
    tok_config.model.update(width=16, depth=1, heads=2, mlp_dim=32)
    tok_config.tokenizer.update(decoder_depth=1)
    train(tok_config, str(tmp_path / "vq"))

    config = shrink(exp.get_config(), steps=2)
    config.model.update(width=16, depth=1, heads=2, mlp_dim=32)
    config.tokenizer_config.model = tok_config.model
    config.tokenizer_config.tokenizer = tok_config.tokenizer
    config.maskgit.tokenizer_workdir = str(tmp_path / "vq")
    config.sample.update(steps=2)
    result = train(config, str(tmp_path / "maskgit"))

    _, _, tokenizer_params = load_trained(str(tmp_path / "vq"))
    trained = jax.device_get(result.state.params)
    # Loaded from the tokenizer run, then never moved by the optimizer.
    jax.tree.map(np.testing.assert_array_equal, trained["tokenizer"], jax.device_get(tokenizer_params))
    assert all(np.isfinite(row["loss"]) for row in result.history)

    path = sample_workdir(str(tmp_path / "maskgit"), num=4, class_id=3)
    grid = np.asarray(Image.open(path))
    # 2 x 2 digits of 8 px with 2 px padding between and around, the whole grid scaled by 8.
    assert grid.shape == (8 * (2 * (8 + 2) + 2), 8 * (2 * (8 + 2) + 2), 3)
    with pytest.raises(ValueError, match="--class=10"):
        sample_workdir(str(tmp_path / "maskgit"), num=1, class_id=10)


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, size=(20000, 2))
    b = rng.normal(0.0, 1.0, size=(20000, 2)) * [2.0, 0.5] + [1.0, -1.0]
    # |mu|^2 + sum (s_a - s_b)^2 for diagonal covariances: 2 + (1 - 2)^2 + (1 - 0.5)^2.
    assert frechet_distance(a, b) == pytest.approx(3.25, abs=0.08)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert conditioning_accuracy(np.array([1, 2, 3, 3]), np.array([1, 2, 0, 3])) == 0.75
    with pytest.raises(ValueError, match="same D"):
        frechet_distance(a, b[:, :1])
