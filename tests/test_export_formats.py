"""safetensors and StableHLO exports, atomic writes, and the `python -m mmjax export` command."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from mmjax.export import (
    CheckpointMismatchError,
    atomic_directory,
    encoder_features,
    export_workdir,
    load_encoder,
    load_hf_vitmae,
    save_encoder,
    save_stablehlo,
)
from tests.export_helpers import images_and_noise, random_params, tiny_mae
from tests.helpers import ROOT, load_experiment

pytest.importorskip("safetensors")


def test_encoder_safetensors_round_trip_and_checks(tmp_path):
    mae = tiny_mae("learned")
    params = random_params(mae)["encoder"]
    out = save_encoder(mae.model_config, params, tmp_path / "enc")
    config, back = load_encoder(out)
    assert config == mae.model_config
    jax.tree.map(np.testing.assert_array_equal, back, params)
    images, _ = images_and_noise()
    np.testing.assert_array_equal(
        encoder_features(config, back, images, "mean"), encoder_features(mae.model_config, params, images, "mean")
    )

    # A tampered file fails with every problem listed.
    from safetensors.numpy import load_file, save_file

    flat = load_file(os.path.join(out, "model.safetensors"))
    del flat["blocks/block_1/mlp/fc2/bias"]
    flat["norm/scale"] = np.zeros(5, np.float32)
    save_file(flat, os.path.join(out, "model.safetensors"))
    with pytest.raises(CheckpointMismatchError, match=r"missing \(1\): blocks/block_1/mlp/fc2/bias") as err:
        load_encoder(out)
    assert err.value.mismatched == ["norm/scale (5,) != (32,)"]


def test_stablehlo_runs_in_a_fresh_process_without_mmjax_at_two_batch_sizes(tmp_path):
    mae = tiny_mae("sincos2d")
    params = random_params(mae, seed=4)["encoder"]
    out = save_stablehlo(mae.model_config, params, tmp_path / "shlo", pool="cls")
    assert sorted(os.listdir(out)) == ["features.stablehlo", "load.py", "meta.json", "params.safetensors"]
    images, _ = images_and_noise(batch_size=5, seed=2)
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["mmjax"] = None  # importing any mmjax module now fails: no model code
        sys.path.insert(0, {str(out)!r})
        import numpy as np
        from load import load_feature_extractor
        extract = load_feature_extractor({str(out)!r})
        images = np.load({str(tmp_path / "images.npy")!r})
        np.save({str(tmp_path / "b1.npy")!r}, np.asarray(extract(images[:1])))
        np.save({str(tmp_path / "b5.npy")!r}, np.asarray(extract(images)))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path, timeout=120)
    expected = np.asarray(encoder_features(mae.model_config, params, images, "cls"))
    np.testing.assert_allclose(np.load(tmp_path / "b1.npy"), expected[:1], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "b5.npy"), expected, atol=1e-5, rtol=1e-5)


def test_atomic_directory_leaves_nothing_on_failure_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_directory(out) as tmp:
            open(os.path.join(tmp, "half.bin"), "w").write("x")
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []
    with atomic_directory(out) as tmp:
        open(os.path.join(tmp, "a"), "w").write("1")
    with pytest.raises(FileExistsError, match="already exists; pass --force"):
        with atomic_directory(out):
            pass
    with atomic_directory(out, force=True) as tmp:
        open(os.path.join(tmp, "b"), "w").write("2")
    assert os.listdir(tmp_path) == ["out"] and os.listdir(out) == ["b"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    from mmjax.train import train

    path = tmp_path_factory.mktemp("run")
    config = load_experiment("mae_digits", "steps=2")
    config.train.update(batch_size=16, tensorboard=False)
    train(config, str(path), devices=jax.devices()[:1])
    return path


def run_cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "mmjax", "export", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_export_command_writes_hf_and_refuses_to_overwrite(workdir, tmp_path):
    from mmjax.train import load_trained

    out = tmp_path / "hf"
    done = run_cli("--workdir", str(workdir), "--format", "hf", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert json.load(open(out / "config.json"))["model_type"] == "vit_mae"
    _, _, trained = load_trained(str(workdir))
    _, params = load_hf_vitmae(out)
    jax.tree.map(np.testing.assert_array_equal, params, jax.device_get(trained))

    again = run_cli("--workdir", str(workdir), "--format", "hf", "--out", str(out))
    assert again.returncode != 0 and "already exists; pass --force" in again.stderr


def test_export_workdir_safetensors_and_stablehlo(workdir, tmp_path):
    from mmjax.export import load_feature_extractor
    from mmjax.train import load_trained

    _, method, trained = load_trained(str(workdir))
    config, params = load_encoder(export_workdir(workdir, "safetensors", tmp_path / "st"))
    jax.tree.map(np.testing.assert_array_equal, params, jax.device_get(trained["encoder"]))
    extract = load_feature_extractor(export_workdir(workdir, "stablehlo", tmp_path / "shlo", pool="mean"))
    images = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(extract(images), method.features(trained, images, "mean"), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="--format must be one of"):
        export_workdir(workdir, "onnx", tmp_path / "x")


@pytest.mark.parametrize("name", ["simmim_mnist", "beit_mnist", "jepa_mnist"])
def test_the_encoder_of_simmim_beit_and_jepa_exports_to_the_features_they_report(name, tmp_path):
    # The `encoder` hook: what `export` writes for each method reproduces its `features` (mask token left out).
    from mmjax.export import load_feature_extractor
    from mmjax.export.workdir import encoder_only
    from mmjax.methods import registry
    from mmjax.methods.protocol import BuiltRun
    from tests.test_vq import tiny_config as tokenizer_config

    config = load_experiment(name)
    config.model.update(size=None, image_size=8, patch_size=2, channels=1, width=16, depth=1, heads=2, mlp_dim=32)
    runs = {}
    if name == "beit_mnist":
        tokenizer = tokenizer_config()
        runs["tokenizer"] = BuiltRun(tokenizer, registry.build_method(tokenizer))
    method = registry.build_method(config, runs)
    images = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype(np.float32)
    params = jax.jit(method.init)(jax.random.key(0), {"image": images})
    model_config, encoder = method.encoder(params)
    encoder = encoder_only(model_config, encoder)
    assert "mask_token" not in encoder
    for pool in ("mean", "tokens"):
        extract = load_feature_extractor(save_stablehlo(model_config, encoder, tmp_path / pool, pool=pool))
        np.testing.assert_allclose(extract(images), method.features(params, images, pool), atol=1e-5, rtol=1e-5)
    # The safetensors artifact knows whether there is a cls token (I-JEPA's encoder has none).
    back_config, back = load_encoder(save_encoder(model_config, encoder, tmp_path / "st"))
    assert ("cls_token" in back) == (name != "jepa_mnist")
    np.testing.assert_allclose(
        encoder_features(back_config, back, images, "cls"), method.features(params, images, "cls"), atol=1e-5
    )
