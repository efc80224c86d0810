"""GIVT and MAR through the trainer: the VAE run, a generator loading it frozen, `mmjax sample` from the workdir."""

import jax
import numpy as np
import pytest
from PIL import Image

from mmjax.errors import user_message
from mmjax.train import load_trained, train
from tests.helpers import load_experiment, sample_workdir

TINY = {"width": 16, "depth": 1, "heads": 2, "mlp_dim": 32}


def shrink(config, steps):
    config.train.update(steps=steps, batch_size=16, log_every=1, checkpoint_every=100)
    config.train.update(async_checkpoints=False, tensorboard=False, warmup_steps=0)
    config.model.update(**TINY)
    return config


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    config = shrink(load_experiment("continuous_digits", "stage=vae"), steps=1)
    config.vae.update(decoder_depth=1)
    workdir = tmp_path_factory.mktemp("vae")
    train(config, str(workdir))
    return config, str(workdir)


@pytest.mark.parametrize("stage", ["givt", "mar"])
def test_generator_trains_on_the_frozen_vae_and_samples_a_png(vae_run, tmp_path, stage):
    vae_config, vae_workdir = vae_run
    config = shrink(load_experiment("continuous_digits", f"stage={stage}"), steps=2)
    if config.model.decoder_depth:
        config.model.decoder_depth = 1
    config.head.update(num_components=2, width=16, depth=1)
    config.sample.update(steps=2, diffusion_steps=3, guidance=2.0, guidance_schedule="linear")
    config.tokenizer_config.model = vae_config.model
    config.tokenizer_config.vae = vae_config.vae
    config[stage].tokenizer_workdir = vae_workdir
    result = train(config, str(tmp_path / stage))

    _, _, vae_params = load_trained(vae_workdir)
    trained = jax.device_get(result.state.params)
    # Loaded from the VAE run, then never moved by the optimizer.
    jax.tree.map(np.testing.assert_array_equal, trained["tokenizer"], jax.device_get(vae_params))
    assert all(np.isfinite(row["loss"]) for row in result.history)

    path = sample_workdir(str(tmp_path / stage), num=2, class_id=3)
    grid = np.asarray(Image.open(path))
    # 1 x 2 digits of 8 px with 2 px padding between and around, the whole grid scaled by 8, and a label column
    # on the left naming the class (before: no label).
    width = 8 * (2 * (8 + 2) + 2)
    assert grid.shape[0] == 8 * (8 + 4) and grid.shape[1] > width + 20 and grid.std() > 0
    assert (grid[:, : grid.shape[1] - width] < 128).any()  # the label's text
    with pytest.raises(ValueError, match="--class=10"):
        sample_workdir(str(tmp_path / stage), num=1, class_id=10)


def test_a_generator_refuses_a_vae_of_another_shape(vae_run, tmp_path):
    vae_config, vae_workdir = vae_run
    config = shrink(load_experiment("continuous_digits", "stage=mar"), steps=1)
    config.tokenizer_config.model = vae_config.model
    config.tokenizer_config.vae = vae_config.vae
    config.tokenizer_config.vae.latent_dim = 8
    config.mar.update(tokenizer_workdir=vae_workdir, latent_dim=8)
    with pytest.raises(
        ValueError,
        match=r"tokenizer_workdir=.* has \(vocab or channels, grid\) \(4, \(4, 4\)\); tokenizer_config expects \(8",
    ):
        train(config, str(tmp_path / "mar"))
    assert not list((tmp_path / "mar" / "checkpoints").glob("*"))  # no step was written


def test_a_generator_refuses_a_run_of_another_method_and_leaves_nothing(vae_run, tmp_path):
    # Before: "'MAE' object has no attribute 'latent_dim'", and `.lock` with an empty checkpoints/ left behind.
    vae_config, _ = vae_run
    mae_workdir = str(tmp_path / "mae")
    train(shrink(load_experiment("mae_digits"), steps=1), mae_workdir)
    config = shrink(load_experiment("continuous_digits", "stage=mar"), steps=1)
    config.tokenizer_config.model = vae_config.model
    config.tokenizer_config.vae = vae_config.vae
    config.mar.tokenizer_workdir = mae_workdir
    with pytest.raises(ValueError) as caught:
        train(config, str(tmp_path / "mar"))
    message = user_message(caught.value)
    assert f"mar.tokenizer_workdir={mae_workdir!r} holds a 'mae' run" in message and "VAETokenizer" in message
    assert not (tmp_path / "mar").exists()
