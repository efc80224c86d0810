"""Every section's knobs can be set from the command line of `python -m mmjax train`, and they take effect.

One real subprocess run per method (MAE on the bundled digits with a knob of every section;
Point-MAE and ReMasker with the Pallas attention), then each knob is read back from the
workdir's `config.json` and checked in what the run did: its printed lines, `metrics.jsonl`,
`eval.json`, the checkpoint's parameters and state, and the parts rebuilt from the saved config.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest

from mmjax.data.kinds import data_kind
from mmjax.data.sources import make_source
from mmjax.masking.registry import MASKS, Layout, draw_mask
from mmjax.train import build_method, restore_state
from mmjax.train.distributed import resolve
from tests.xla_flags import xla_flags

pytestmark = pytest.mark.promise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_cli(workdir, experiment: str, *overrides: str, devices: int = 1) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": xla_flags(devices),
    }
    args = [sys.executable, "-m", "mmjax", "train", "--config", experiment, "--workdir", str(workdir), *overrides]
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def saved_config(workdir) -> dict:
    return json.loads((workdir / "config.json").read_text())


def metric_rows(workdir) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


MAE_OVERRIDES = (
    "--config.seed=3",
    "--config.model.width=16",
    "--config.model.heads=2",
    "--config.decoder.depth=2",
    "--config.mae.mask_ratio=0.5",
    "--config.hpm.weight=0.25",
    "--config.teacher.ema_ramp=0.25",
    "--config.mask.kind=blockwise",
    "--config.mask.blockwise.min_block=2",
    "--config.target.kind=pixels",
    "--config.loss.kind=l1",
    "--config.data.num_test=797",
    "--config.train.steps=3",
    "--config.train.log_every=1",
    "--config.train.checkpoint_every=3",
    "--config.train.batch_size=8",
    "--config.train.no_decay=('.*bias$', '.*scale$', '.*token$', '.*embedding$', '.*kernel$')",
    "--config.train.weight_decay_end=0.5",
    "--config.mesh.fsdp=2",
    "--config.sharding.rules=(('batch', ('data', 'fsdp')), ('embed', None))",
    "--config.distributed.num_processes=1",
    "--config.distributed.process_id=0",
    "--config.eval.protocols=('reconstruction_figure',)",
    "--config.eval.reconstruction_figure.examples=3",
)


@pytest.fixture(scope="module")
def mae_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("knobs") / "mae"
    with socket.socket() as s:  # a free port for the one-process jax.distributed coordinator
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    coordinator = f"--config.distributed.coordinator=localhost:{port}"
    proc = train_cli(workdir, "experiments/mae_digits.py", *MAE_OVERRIDES, coordinator, devices=2)
    return workdir, proc.stdout


def test_every_section_set_on_the_command_line_is_saved(mae_run):
    workdir, _ = mae_run
    saved = saved_config(workdir)
    assert saved["seed"] == 3
    assert (saved["model"]["width"], saved["model"]["heads"], saved["decoder"]["depth"]) == (16, 2, 2)
    assert saved["mae"]["mask_ratio"] == 0.5 and saved["hpm"]["weight"] == saved["teacher"]["ema_ramp"] == 0.25
    assert saved["mask"]["kind"] == "blockwise" and saved["mask"]["blockwise"]["min_block"] == 2
    assert saved["target"]["kind"] == "pixels" and saved["loss"]["kind"] == "l1"
    assert saved["data"]["num_test"] == 797
    assert saved["train"]["no_decay"][-1] == ".*kernel$" and saved["train"]["weight_decay_end"] == 0.5
    assert saved["mesh"]["fsdp"] == 2 and saved["sharding"]["rules"] == [["batch", ["data", "fsdp"]], ["embed", None]]
    assert saved["distributed"]["num_processes"] == 1 and saved["distributed"]["coordinator"].startswith("localhost:")
    assert (
        saved["eval"]["protocols"] == ["reconstruction_figure"]
        and saved["eval"]["reconstruction_figure"]["examples"] == 3
    )


def test_train_mesh_and_eval_knobs_change_what_the_run_does(mae_run):
    workdir, stdout = mae_run
    assert "weight decay on 0 of" in stdout  # every parameter path matches the no_decay patterns given
    assert "mesh {'data': 1, 'fsdp': 2, 'tensor': 1}" in stdout
    rows = metric_rows(workdir)
    assert [r["step"] for r in rows] == [1, 2, 3]
    # Cosine from train.weight_decay (0.05) to weight_decay_end over 3 steps, at steps 0, 1, 2.
    expected = [0.5 + (0.05 - 0.5) * 0.5 * (1 + math.cos(math.pi * s / 3)) for s in range(3)]
    np.testing.assert_allclose([r["weight_decay"] for r in rows], expected, rtol=1e-5)
    # mae.mask_ratio=0.5 over 16 patches: 8 hidden, whatever the mask kind (MAE's fixed count).
    assert all(r["mask_ratio"] == 0.5 for r in rows)
    report = json.loads((workdir / "eval.json").read_text())
    assert report["results"] == [] and set(report["files"]) == {"figure"}  # only the protocol named
    assert sorted(os.listdir(workdir / "checkpoints")) == ["3"]


def test_model_sharding_seed_data_and_parts_reach_their_consumers(mae_run):
    workdir, _ = mae_run
    config, method, state = restore_state(
        str(workdir), mesh={"data": 1, "fsdp": 2, "tensor": 1}, devices=jax.devices()[:2], say=lambda _: None
    )
    params = state.params
    assert params["encoder"]["patch_embed"]["kernel"].shape[-1] == 16  # model.width
    assert sum(k.startswith("block") for k in params["decoder"]["blocks"]) == 2  # decoder.depth
    # sharding.rules maps embed to no mesh axis: every parameter is replicated despite fsdp=2.
    assert all(leaf.sharding.is_fully_replicated for leaf in jax.tree.leaves(params))
    assert np.array_equal(jax.random.key_data(state.rng), jax.random.key_data(jax.random.split(jax.random.key(3))[1]))
    assert len(make_source(config.data, "train")) == 1797 - 797  # data.num_test
    assert resolve(config.distributed)["num_processes"] == 1 and resolve(config.distributed)["process_id"] == 0
    # The rebuilt method draws the blockwise mask (with its min_block), adapted to MAE's count.
    chosen = MASKS.choose("blockwise", min_block=2)
    expected = draw_mask(chosen, jax.random.key(7), 4, Layout("grid", (4, 4)), 0.5, fixed_count=True)
    drawn = method.make_mask(jax.random.key(7), 4)
    np.testing.assert_array_equal(drawn.mask, expected.mask)
    assert (method.mask_part.name, method.target_part.name, method.loss_part.name) == ("blockwise", "pixels", "l1")
    # Terms on only with a guided mask kind (hard_patch, attention_guided); their effect: tests/test_hpm.py.
    assert method.term("hpm") is None and method.term("teacher") is None
    config.mask.kind = "hard_patch"
    hpm = build_method(config)
    assert hpm.term("hpm").opts.weight == hpm.term("teacher").opts.ema_ramp == 0.25


POINT_MASK = ("--config.mask.kind=region", "--config.mask.region.num_regions=2")


@pytest.mark.parametrize(
    ("experiment", "knob", "extra"),
    [
        ("experiments/pointmae_shapes.py:steps=1", "model", POINT_MASK),
        ("experiments/remasker_wine.py:steps=1", "remasker", ()),
    ],
)
def test_the_attention_implementation_reaches_point_mae_and_remasker(tmp_path, experiment, knob, extra):
    workdir = tmp_path / "run"
    train_cli(
        workdir,
        experiment,
        f"--config.{knob}.attention_impl=pallas",
        "--config.train.batch_size=8",
        "--config.train.checkpoint_every=1",
        "--config.eval.protocols=('reconstruction_figure',)",
        *extra,
    )
    saved = saved_config(workdir)
    assert saved[knob]["attention_impl"] == "pallas"
    config = ml_collections.ConfigDict(saved)
    method = build_method(config)
    if extra:  # Point-MAE's group mask, chosen on the command line: the rebuilt method draws it
        assert saved["mask"] == {"kind": "region", "region": {"num_regions": 2}}
        assert (method.mask_part.name, method.mask_part.args.num_regions) == ("region", 2)
    batch = data_kind(config.data).example_batch(config.data, 2)
    params = method.init(jax.random.key(0), batch)
    jaxpr = str(jax.make_jaxpr(lambda p: method.loss(p, batch, jax.random.key(1), True)[0])(params))
    assert "pallas_call" in jaxpr  # the saved knob builds a model whose attention is the Pallas kernel
