"""MaskGIT through the trainer: a frozen tokenizer loaded from its run, then `sample` from the workdir."""

import importlib.util
import pathlib
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from mmjax.evaluate.generation import PixelClassifier, conditioning_accuracy, frechet_distance
from mmjax.evaluate.protocols import run_protocols
from mmjax.methods import build_method
from mmjax.train import load_trained, train
from tests.helpers import sample_workdir

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
    # 2 x 2 digits of 8 px with 2 px padding between and around, the whole grid scaled by 8, and a label column
    # naming the class on the left.
    side = 8 * (2 * (8 + 2) + 2)
    assert grid.shape[0] == side and grid.shape[1] > side + 20 and (grid[:, : grid.shape[1] - side] < 128).any()
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


def test_end_of_run_rows_score_samples_against_real_images_and_reconstructions(tmp_path):
    exp = experiment()
    config = exp.get_config()
    config.model.update(width=16, depth=1, heads=2, mlp_dim=32)
    config.tokenizer_config.model.update(width=16, depth=1, heads=2, mlp_dim=32)
    config.tokenizer_config.tokenizer.update(decoder_depth=1)
    config.sample.update(steps=2, per_class=2, metrics_per_class=3)
    config.eval.batch_size = 16  # 30 samples and 297 test images: the last batch of each is padded
    method = build_method(config)
    params = jax.device_get(jax.jit(method.init)(jax.random.key(0), {"image": np.zeros((1, 8, 8, 1), np.float32)}))

    results = run_protocols(config, method, params, str(tmp_path))[0]  # untrained: random transformer and tokenizer
    rows = {(r.name, r.metric): r for r in results}
    names = ("maskgit samples", "real test images", "tokenizer reconstructions")
    assert set(rows) == {(n, m) for n in names for m in ("class accuracy", "Frechet distance")}
    assert {r.protocol for r in results} == {"class-conditional samples"}
    assert [rows[n, "class accuracy"].baseline for n in names] == [False, True, True]
    for r in results:
        assert np.isfinite(r.value) and r.value >= 0 and (r.metric != "class accuracy" or r.value <= 1)
    # The classifier labels real digits well; random models' samples do not look like the class they were asked for.
    assert rows["real test images", "class accuracy"].value > 0.9
    assert rows["maskgit samples", "class accuracy"].value < 0.7
    assert rows["maskgit samples", "Frechet distance"].value > rows["real test images", "Frechet distance"].value
    # samples.png: a row per class of `sample.per_class` 8 px digits (2 px padding), scaled by 8, after a
    # white margin on the left that names each row's class ("class N": dark text in every row).
    grid = np.asarray(Image.open(tmp_path / "samples.png"))
    height, images_width = 8 * (10 * (8 + 2) + 2), 8 * (2 * (8 + 2) + 2)
    margin = grid.shape[1] - images_width
    assert grid.shape[0] == height and grid.shape[2] == 3 and margin > 0
    for row in range(10):
        band = grid[16 + row * 80 : 16 + (row + 1) * 80 - 16, :margin]
        assert (band < 128).any(), f"row {row} has no label"


def test_the_sample_classifier_names_the_extra_when_scikit_learn_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.neural_network", None)  # `import` of it raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'mmjax\[data\]'"):
        PixelClassifier.fit(np.zeros((4, 8, 8, 1), np.uint8), np.arange(4))


def test_the_sample_classifier_is_fit_once_per_data_and_seed(monkeypatch):
    from mmjax.evaluate import generation

    calls = []
    monkeypatch.setattr(generation, "_FITTED", {})
    monkeypatch.setattr(PixelClassifier, "fit", classmethod(lambda cls, x, y, seed=0: calls.append(seed) or object()))
    images, labels = np.zeros((4, 8, 8, 1), np.uint8), np.arange(4)
    first = PixelClassifier.fitted(images, labels, seed=0)
    assert PixelClassifier.fitted(images.copy(), labels.copy(), seed=0) is first and calls == [0]
    assert PixelClassifier.fitted(images, labels, seed=1) is not first and calls == [0, 1]
    assert PixelClassifier.fitted(images + 1, labels, seed=1) is not first and calls == [0, 1, 1]
