"""A method defined in a module of its own (here: its experiment file, outside `mmjax/`) is found by the
trainer, trained, and evaluated by the protocols it declares where it is registered; nothing else is edited."""

from __future__ import annotations

import json
import textwrap

from tests.test_cli_knobs import metric_rows, train_cli

EXPERIMENT = '''
"""A new method in its own module: a learned scale on the raw pixels, and a bias fit to each image's mean."""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

from mmjax.data import presets
from mmjax.methods.registry import available_methods, register_method
from mmjax.train.defaults import training_sections


@dataclasses.dataclass(frozen=True)
class ScaledPixels:
    def init(self, rng, batch):
        return {"scale": jnp.ones(()), "bias": jnp.zeros(())}

    def loss(self, params, batch, rng, train=True):
        error = jnp.mean((batch["image"].mean(axis=(1, 2, 3)) - params["bias"]) ** 2)
        return error, {"mean_error": error}

    def param_axes(self):
        return {"scale": jax.sharding.PartitionSpec(), "bias": jax.sharding.PartitionSpec()}

    def features(self, params, images, pool="cls"):
        return params["scale"] * images.reshape(images.shape[0], -1)


if "scaled_pixels_example" not in available_methods():

    @register_method("scaled_pixels_example", protocols=("knn",))
    def build(config):
        return ScaledPixels()


def get_config(arg=None):
    config = training_sections(ml_collections.ConfigDict({"method": "scaled_pixels_example"}))
    config.data = presets.digits()
    config.train.update(steps=4, batch_size=32, lr=1e-2, warmup_steps=0, log_every=2, checkpoint_every=4)
    return config
'''


def test_a_method_in_its_own_module_trains_and_gets_its_own_protocols(tmp_path):
    experiment = tmp_path / "scaled_pixels.py"
    experiment.write_text(textwrap.dedent(EXPERIMENT))
    workdir = tmp_path / "run"
    proc = train_cli(workdir, str(experiment))
    rows = metric_rows(workdir)
    assert [r["step"] for r in rows] == [2, 4] and all("mean_error" in r for r in rows)
    report = json.loads((workdir / "eval.json").read_text())
    protocols = {row["protocol"] for row in report["results"]}
    assert protocols == {"kNN"}, report  # the declared protocol alone: no linear probe, no figure
    names = {row["name"] for row in report["results"]}
    assert {"scaled_pixels_example encoder", "raw pixels"} <= names, names
    assert "kNN" in proc.stdout
