"""Parallelism from the config, resharding restore, and preemption (in-process, 8 simulated devices)."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import ml_collections
import numpy as np
import pytest

from mmjax.train import PREEMPTED_EXIT_CODE, distributed, restore_state, train
from tests.helpers import ROOT, load_experiment
from tests.xla_flags import xla_flags


def tiny(steps=3, **mesh):
    config = load_experiment("mae_digits", f"steps={steps}")
    config.train.update(batch_size=16, log_every=1, checkpoint_every=3, tensorboard=False)
    config.eval.protocols = ()
    config.mesh.update(mesh)
    return config


@pytest.mark.slow  # 34 s here (CI budget); runs with `-m slow`
def test_tensor2_matches_tensor1(tmp_path):
    one = train(tiny(data=8), str(tmp_path / "t1"))
    two = train(tiny(data=4, tensor=2), str(tmp_path / "t2"))
    fc1 = two.state.params["encoder"]["blocks"]["block_0"]["mlp"]["fc1"]["kernel"]
    assert "tensor" in str(fc1.sharding.spec)  # the MLP hidden dimension really is split
    losses = [[row["loss"] for row in r.history] for r in (one, two)]
    assert len(losses[0]) == 3
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5, atol=1e-6)


def test_checkpoint_restores_onto_other_meshes_with_identical_values(tmp_path):
    result = train(tiny(data=8), str(tmp_path))
    saved = jax.tree_util.tree_flatten_with_path(result.state)[0]
    for mesh, devices in (({"data": 2, "fsdp": 4}, None), ({"data": 1}, jax.devices()[:1])):
        _, _, state = restore_state(str(tmp_path), mesh=mesh, devices=devices)
        leaves = jax.tree.leaves(state)
        assert len(leaves) == len(saved)
        for (path, a), b in zip(saved, leaves, strict=True):
            np.testing.assert_array_equal(np.asarray(b), np.asarray(a), err_msg=f"{mesh} {jax.tree_util.keystr(path)}")
    kernel = restore_state(str(tmp_path), mesh={"data": 2, "fsdp": 4})[2].params["encoder"]["patch_embed"]["kernel"]
    assert kernel.sharding.mesh.shape["fsdp"] == 4


def cli(workdir, steps):
    env = dict(os.environ, XLA_FLAGS=xla_flags(), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "mmjax", "train", "--config", "experiments/mae_digits.py", "--workdir", str(workdir)]
    overrides = [
        f"--config.train.steps={steps}",
        "--config.train.log_every=1",
        "--config.train.checkpoint_every=1000",
        "--config.train.tensorboard=False",
        "--config.eval.protocols=()",
    ]
    return subprocess.Popen(
        [*cmd, *overrides], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def logged_steps(workdir):
    path = workdir / "metrics.jsonl"
    return [json.loads(line)["step"] for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.promise
def test_sigterm_saves_within_a_step_exits_42_and_the_rerun_resumes(tmp_path):
    run = cli(tmp_path, steps=120)
    deadline = time.time() + 180
    while time.time() < deadline and run.poll() is None and len(logged_steps(tmp_path)) < 20:
        time.sleep(0.02)
    assert run.poll() is None, "the run ended before the signal"
    at_signal = logged_steps(tmp_path)[-1]
    run.send_signal(signal.SIGTERM)
    out, _ = run.communicate(timeout=120)
    assert run.returncode == PREEMPTED_EXIT_CODE, out
    saved = [int(d) for d in os.listdir(tmp_path / "checkpoints") if d.isdigit()]
    assert len(saved) == 1 and at_signal <= saved[0] <= at_signal + 2, (at_signal, saved)
    assert f"stopped after step {saved[0]}" in out

    rerun = cli(tmp_path, steps=120)  # the same command
    out, _ = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, out
    assert f"resumed from step {saved[0]}" in out
    steps = logged_steps(tmp_path)
    assert steps[steps.index(saved[0] + 1) :] == list(range(saved[0] + 1, 121))


def test_distributed_settings_come_from_env_over_config(monkeypatch):
    for name in ("MMJAX_COORDINATOR", "MMJAX_NUM_PROCESSES", "MMJAX_PROCESS_ID", "MMJAX_DISTRIBUTED"):
        monkeypatch.delenv(name, raising=False)
    section = ml_collections.ConfigDict({"enabled": False, "coordinator": "", "num_processes": 0, "process_id": -1})
    assert distributed.resolve(section) is None  # single process: nothing initialized
    section.enabled = True
    assert distributed.resolve(section) == {}  # auto-detect (TPU pod, SLURM)
    section.update(coordinator="10.0.0.1:1234", num_processes=4, process_id=3)
    monkeypatch.setenv("MMJAX_PROCESS_ID", "1")
    assert distributed.resolve(section) == {"coordinator_address": "10.0.0.1:1234", "num_processes": 4, "process_id": 1}
    monkeypatch.setenv("MMJAX_PROCESS_ID", "4")
    with pytest.raises(ValueError, match="process_id=4"):
        distributed.resolve(section)
    monkeypatch.setenv("MMJAX_COORDINATOR", "nohost")
    monkeypatch.setenv("MMJAX_PROCESS_ID", "0")
    with pytest.raises(ValueError, match="coordinator='nohost'"):
        distributed.resolve(section)
