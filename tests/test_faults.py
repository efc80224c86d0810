"""Faults that must never lose a run (issue [faults]): each test reproduces one and checks the run survives it.

In-process tests train `experiments/mae_digits.py` at batch 16 on one device; the process
tests run the real command line (`python -m mmjax train`), as a cluster launcher would.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from mmjax.config import ConfigError
from mmjax.errors import user_message
from mmjax.train import NonFiniteLossError, Preempted, load_trained, restore_state, train
from mmjax.train import checkpoint as checkpoint_lib
from mmjax.train.checkpoint import CheckpointRestoreError
from mmjax.train.retention import Retention
from mmjax.train.workdir import config_changes
from tests.fault_model import tiny, vector_stream
from tests.helpers import ROOT, load_experiment
from tests.xla_flags import xla_flags


def one_device():
    return jax.devices()[:1]


def steps_in(folder):
    return sorted(int(d) for d in os.listdir(folder) if d.isdigit()) if os.path.isdir(folder) else []


def all_finite(tree):
    return all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(tree) if np.issubdtype(x.dtype, np.inexact))


def nan_batches(config, bad_steps):
    """The configured stream, with a NaN in the batches of `bad_steps` (1-based)."""
    stream = iter(vector_stream(config.data, config.train.batch_size, config.seed, 0, 1))
    for step in range(1, 10_000):
        batch = dict(next(stream))
        if step in bad_steps:
            batch["x"] = batch["x"].copy()
            batch["x"][0, 0] = np.nan
        yield batch


def same(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


# --- 1. Every saved checkpoint is finite; a checkpoint is good only once a later step trained from it ----------


def test_a_checkpoint_whose_parameters_give_a_nan_loss_is_moved_aside(tmp_path):
    # The case on the real MAE: lr=1e10 leaves finite parameters of size ~1e9 after step 2 (so
    # checkpoint 2 passes a finite check) and the loss of step 3, computed from them, is NaN. Before,
    # checkpoint 2 was kept as "the last good checkpoint", and resuming it gave NaN at once.
    config = load_experiment("mae_digits", "steps=40")
    config.train.update(batch_size=16, lr=1e10, checkpoint_every=2, log_every=1, tensorboard=False)
    config.eval.protocols = ()
    with pytest.raises(NonFiniteLossError, match="step 3: loss=nan.*first non-finite leaf params/") as err:
        train(config, str(tmp_path), devices=one_device())
    assert "Checkpoint 2 moved to" in str(err.value) and "No checkpoint is kept" in str(err.value)
    assert steps_in(tmp_path / "checkpoints") == []
    assert os.listdir(tmp_path / "rejected_checkpoints") == ["2.nonfinite"]  # moved, not deleted
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 3 and rows[-1]["loss"] is None  # the bad step is on record, as valid JSON


def test_no_checkpoint_with_a_non_finite_value_is_kept(tmp_path):
    # Warmup to lr=1e20 over 2 steps: step 1 (lr 0) is fine, step 2 (lr 5e19) leaves w ~ 5e19 (finite),
    # step 3's loss overflows. Checkpoint 2 is moved aside, step 3 is never saved, checkpoint 1 stays.
    config = tiny(steps=10, lr=1e20, warmup_steps=2, checkpoint_every=1)
    with pytest.raises(NonFiniteLossError, match="step 3: loss=inf.*last good checkpoint is step 1"):
        train(config, str(tmp_path), devices=one_device())
    assert steps_in(tmp_path / "checkpoints") == [1]
    assert os.listdir(tmp_path / "rejected_checkpoints") == ["2.nonfinite"]
    _, _, state = restore_state(str(tmp_path), devices=one_device())
    assert all_finite(state.params) and all_finite(state.opt_state)


def test_skip_keeps_the_state_of_before_a_bad_step_and_counts_it(tmp_path):
    config = tiny(steps=6, on_nonfinite="skip", checkpoint_every=1)
    result = train(config, str(tmp_path), data_iterator=nan_batches(config, {5}), devices=one_device())
    assert result.step == 6 and int(result.state.skipped) == 1
    assert [row["skipped_updates"] for row in result.history] == [0, 0, 0, 0, 1, 1]
    assert result.history[4]["loss"] != result.history[4]["loss"]  # the skipped step's loss: NaN
    _, _, four = load_trained(str(tmp_path), 4, devices=one_device())
    _, _, five = load_trained(str(tmp_path), 5, devices=one_device())
    same(four, five)
    assert all_finite(result.state.params)


def test_skip_stops_after_too_many_bad_steps_in_a_row(tmp_path):
    config = tiny(steps=20, on_nonfinite="skip", max_consecutive_skips=3, checkpoint_every=2)
    with pytest.raises(NonFiniteLossError, match=r"step 7:.*3 updates in a row skipped"):
        train(config, str(tmp_path), data_iterator=nan_batches(config, set(range(5, 100))), devices=one_device())
    # Steps 5-7 all trained from the state of step 4 (checkpoints 4 and 6 hold it) and failed: both are
    # moved aside; 2 was confirmed by the good steps 3 and 4.
    assert steps_in(tmp_path / "checkpoints") == [2]
    assert sorted(os.listdir(tmp_path / "rejected_checkpoints")) == ["4.nonfinite", "6.nonfinite"]


# --- 2. Retention cannot delete the run ---------------------------------------------------------------------


def test_keep_checkpoints_zero_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="train.keep_checkpoints=0: expected an integer >= 1"):
        train(tiny(keep_checkpoints=0), str(tmp_path / "run"), devices=one_device())
    assert not (tmp_path / "run").exists()


def test_the_last_good_checkpoint_survives_keep_one(tmp_path):
    # keep=1 and checkpoints every 2 steps; step 5's batch has a NaN. Checkpoint 4 is unconfirmed when the
    # NaN arrives (step 5 trained from it and failed), so it is moved aside, and 2 must still be there.
    # Before: orbax's max_to_keep=1 deleted 2 as soon as 4 was saved.
    config = tiny(steps=10, keep_checkpoints=1, checkpoint_every=2)
    with pytest.raises(NonFiniteLossError, match="last good checkpoint is step 2"):
        train(config, str(tmp_path), data_iterator=nan_batches(config, {5}), devices=one_device())
    assert steps_in(tmp_path / "checkpoints") == [2]
    shutil.rmtree(tmp_path)
    result = train(tiny(steps=8, keep_checkpoints=1, checkpoint_every=2), str(tmp_path), devices=one_device())
    assert result.step == 8 and steps_in(tmp_path / "checkpoints") == [8]


class FakeManager:
    """The steps a `CheckpointManager` holds, and what was deleted from them."""

    def __init__(self):
        self.steps, self.deleted = [], []

    def all_steps(self):
        return list(self.steps)

    def delete(self, step):
        self.steps.remove(step)
        self.deleted.append(step)


@pytest.mark.parametrize("async_save", [True, False])
def test_keep_one_deletes_the_old_checkpoint_only_once_the_new_one_is_written(async_save):
    # Before: confirming checkpoint 10 (step 11 trained from it) deleted 5 while 10 was still being written in
    # the background, so a kill then left no finished checkpoint.
    manager = FakeManager()
    retention = Retention(manager, "unused", keep=1, async_save=async_save)
    for step in (5, 10, 15):
        manager.steps.append(step)
        retention.saved(step)
        retention.confirm_before(step + 1)
    # asynchronous: 15 may be unwritten, so 10 stays; 5 went once 10 was surely written (the save of 15 began)
    assert manager.steps == ([10, 15] if async_save else [15])
    retention.all_written()  # the run waited for its saves
    retention.prune()
    assert manager.steps == [15]


def worker(workdir, steps, *knobs):
    """`tests.fault_model` as its own process: the linear model trained by `mmjax.train.train` on one device."""
    env = {**os.environ, "XLA_FLAGS": xla_flags(1), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "tests.fault_model", str(workdir), str(steps), *knobs]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.promise
def test_keep_one_with_background_saves_survives_kills_at_twelve_moments(tmp_path):
    # keep_checkpoints=1, a save every 2 steps in the background. Each life is killed a little later after its
    # first new checkpoint (0 to 0.17 s: inside a save, between saves, during a delete). Every kill must leave a
    # finished checkpoint equal to the straight run's at that step, and the run must end bitwise equal to it.
    # Before: 8 of 12 kills left none, and the rerun began again at step 0 with exit status 0.
    steps, knobs = 240, ("checkpoint_every=2", "keep_checkpoints=1", "log_every=10000")
    straight = worker(tmp_path / "straight", steps, "checkpoint_every=2", "keep_checkpoints=1000", "log_every=10000")
    run, copies, kept = tmp_path / "killed", tmp_path / "copies", []
    for moment in range(12):
        before = max(steps_in(run / "checkpoints"), default=0)
        proc = worker(run, steps, *knobs)
        deadline = time.time() + 120
        newest = before
        while time.time() < deadline and proc.poll() is None and newest <= before:
            time.sleep(0.005)
            newest = max(steps_in(run / "checkpoints"), default=0)
        time.sleep(0.015 * moment)
        assert proc.poll() is None, proc.stdout.read()
        proc.kill()
        out = proc.communicate()[0]
        assert before == 0 or f"resumed from step {before}" in out, out
        finished = steps_in(run / "checkpoints")
        assert finished, f"kill {moment} left no finished checkpoint: {os.listdir(run / 'checkpoints')}"
        kept.append(finished[-1])
        shutil.copytree(run / "checkpoints" / str(kept[-1]), copies / "checkpoints" / str(kept[-1]), dirs_exist_ok=True)
    last = worker(run, steps, *knobs)
    out = last.communicate(timeout=300)[0]
    assert last.returncode == 0 and f"resumed from step {kept[-1]}" in out and f"done at step {steps}" in out, out
    assert straight.wait(timeout=300) == 0, straight.stdout.read()
    for step in [*sorted(set(kept)), steps]:  # what each restart resumed from, and the end: the straight run's
        killed = load_trained(str(copies if step < steps else run), step, devices=one_device())[2]
        same(load_trained(str(tmp_path / "straight"), step, devices=one_device())[2], killed)
    assert steps_in(run / "checkpoints") == [steps]


def test_a_workdir_with_only_unfinished_saves_is_not_silently_started_over(tmp_path, capsys):
    # A run killed while writing its first checkpoint: orbax's temporary folder is all there is. Before: the
    # rerun removed it and trained from step 0 with exit status 0 and no word.
    train(tiny(steps=3), str(tmp_path), devices=one_device())
    (tmp_path / "checkpoints" / "3").rename(tmp_path / "checkpoints" / f"3{checkpoint_lib.TMP_SUFFIX}")
    with pytest.raises(checkpoint_lib.InterruptedSavesError) as caught:
        train(tiny(steps=6), str(tmp_path), devices=one_device())
    message = user_message(caught.value)
    assert "no finished checkpoint, only the unfinished save of step 3" in message and "--restart" in message
    assert str(tmp_path / "checkpoints") in message and "\n" not in message
    assert os.listdir(tmp_path / "checkpoints") == [f"3{checkpoint_lib.TMP_SUFFIX}"]  # nothing removed
    capsys.readouterr()
    result = train(tiny(steps=6), str(tmp_path), devices=one_device(), restart=True)
    assert result.step == 6 and "removed the unfinished save of step 3" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["3", "6"]  # the new run's


# --- 5. A damaged newest checkpoint: reported, moved aside, the one before it resumed ----------------------------


def damage(folder, what):
    """Truncate a checkpoint's tensor files, or its data-iterator state, as a full disk or a crash would."""
    if what == "tensors":
        for root, _, files in os.walk(folder / "state"):
            for name in files:
                if os.path.basename(root) == "d":  # cut in half, as a write that stopped part-way
                    path = os.path.join(root, name)
                    os.truncate(path, os.path.getsize(path) // 2)
    else:
        os.truncate(folder / "data" / "process_0-of-1.json", 10)


@pytest.mark.parametrize("what", ["tensors", "iterator"])
def test_a_truncated_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, what, capsys):
    straight = train(tiny(steps=9), str(tmp_path), devices=one_device())  # checkpoints 3, 6, 9
    damage(tmp_path / "checkpoints" / "9", what)
    resumed = train(tiny(steps=9), str(tmp_path), devices=one_device())
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "could not be restored" in x)
    assert "checkpoint step 9" in line and "using step 6" in line and "/checkpoints/9/" in line
    assert "rejected_checkpoints/9.unreadable" in line
    assert "resumed from step 6" in out
    assert os.listdir(tmp_path / "rejected_checkpoints") == ["9.unreadable"]
    assert steps_in(tmp_path / "checkpoints") == [3, 6, 9]
    same(straight.state.params, resumed.state.params)


def test_the_reads_orbax_abandons_on_a_failed_restore_stay_off_the_console(monkeypatch):
    # Before: a damaged checkpoint's one-line cause came inside ~250 lines of "Exception ignored in:
    # <coroutine ...> ... RuntimeError: Event loop is closed" from orbax's abandoned array reads.
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    checkpoint_lib.silence_abandoned_reads()
    checkpoint_lib.silence_abandoned_reads()  # once is enough: no second layer

    async def read():  # stands in for orbax's _read_array_index_and_device_put
        pass

    coroutine = read()
    coroutine.close()
    noise = [
        types.SimpleNamespace(object=coroutine, exc_value=RuntimeError("Event loop is closed")),
        types.SimpleNamespace(object="<bound method of orbax.checkpoint.Foo>", exc_value=ValueError("x")),
    ]
    other = types.SimpleNamespace(object="<function mine>", exc_value=ValueError("a real problem"))
    for unraisable in [*noise, other]:
        sys.unraisablehook(unraisable)
    assert seen == [other]


def test_when_no_checkpoint_restores_nothing_is_moved(tmp_path):
    train(tiny(steps=6), str(tmp_path), devices=one_device())
    for step in (3, 6):
        damage(tmp_path / "checkpoints" / str(step), "iterator")
    with pytest.raises(CheckpointRestoreError, match="the newest, step 6: .*checkpoints/6/data"):
        train(tiny(steps=9), str(tmp_path), devices=one_device())
    assert steps_in(tmp_path / "checkpoints") == [3, 6] and not (tmp_path / "rejected_checkpoints").exists()


# --- 6. metrics.jsonl: one row per step after a resume, valid JSON ----------------------------------------------


def strict_rows(path):
    def no_constants(name):
        raise ValueError(f"{name} is not JSON")

    return [json.loads(line, parse_constant=no_constants) for line in path.read_text().splitlines()]


def test_a_field_added_since_with_an_unset_default_is_not_a_change():
    # A run saved before `data.path` existed resumes: "" (unset) is what the old config meant.
    saved = {"data": {"source": "mnist"}, "model": {"width": 32}}
    new = {"data": {"source": "mnist", "path": "", "test_path": None}, "model": {"width": 32}}
    assert config_changes(saved, new) == ([], [])
    refused, _ = config_changes(saved, {**new, "data": {"source": "mnist", "path": "/my/images"}})
    assert refused == ["data.path '<absent>' -> '/my/images'"]
    refused, _ = config_changes(saved, {**new, "model": {"width": 32, "depth": 2}})
    assert refused == ["model.depth '<absent>' -> 2"]


def test_a_checkpoint_of_the_previous_format_is_read_but_not_resumed(tmp_path):
    # Checkpoints written before the finite check have no `skipped` counter and count the data
    # position in batches: eval / export read them (skipped = 0); resuming one is refused in one line.
    train(tiny(steps=3), str(tmp_path), devices=one_device())
    _, _, state = restore_state(str(tmp_path), devices=one_device())
    manager = checkpoint_lib.checkpoint_manager(str(tmp_path), async_save=False)
    config = checkpoint_lib.saved_config(manager, 3)
    shutil.rmtree(tmp_path / "checkpoints" / "3")
    manager.reload()
    old = {k: getattr(state, k) for k in checkpoint_lib.LEGACY_STATE_FIELDS}
    manager.save(3, args=ocp.args.Composite(state=ocp.args.StandardSave(old), config=ocp.args.JsonSave(config)))
    manager.wait_until_finished()
    manager.close()
    _, _, restored = restore_state(str(tmp_path), devices=one_device())
    same(restored.params, state.params)
    assert int(restored.skipped) == 0 and int(restored.step) == 3
    with pytest.raises(ConfigError, match="checkpoint step 3 .* written by an older mmjax"):
        train(tiny(steps=6), str(tmp_path), devices=one_device())
    assert steps_in(tmp_path / "checkpoints") == [3]


def test_metrics_are_cut_back_to_the_resumed_step(tmp_path):
    train(tiny(steps=6), str(tmp_path), devices=one_device())
    with open(tmp_path / "metrics.jsonl", "a") as f:  # what a run killed after step 8 leaves, its last row cut short
        f.write('{"step": 7, "loss": 1.0}\n{"step": 8, "loss": 0.9}\n{"step": 9, "lo')
    train(tiny(steps=10), str(tmp_path), devices=one_device())
    assert [r["step"] for r in strict_rows(tmp_path / "metrics.jsonl")] == list(range(1, 11))


# --- 7. Resume changes: a new batch size goes on from the next example; another process count is refused --------


def test_the_data_position_is_kept_in_examples():
    stream = iter(vector_stream(tiny().data, 16, 0, 0, 1))
    for _ in range(4):
        next(stream)
    halves = iter(vector_stream(tiny().data, 8, 0, 0, 1))
    halves.set_state(stream.get_state())
    fresh = iter(vector_stream(tiny().data, 8, 0, 0, 1))
    expected = [next(fresh) for _ in range(9)][8]  # examples 64..71
    np.testing.assert_array_equal(next(halves)["x"], expected["x"])


def test_a_new_batch_size_resumes_and_says_so(tmp_path, capsys):
    train(tiny(steps=3), str(tmp_path), devices=one_device())
    config = tiny(steps=5)
    config.train.batch_size = 8
    result = train(config, str(tmp_path), devices=one_device())
    assert result.step == 5 and "train.batch_size 16 -> 8" in capsys.readouterr().out


def test_another_process_count_is_refused_in_one_line(tmp_path):
    train(tiny(steps=3), str(tmp_path), devices=one_device())
    data = tmp_path / "checkpoints" / "3" / "data"
    os.rename(data / "process_0-of-1.json", data / "process_0-of-2.json")  # as a 2-process run writes it
    before = (tmp_path / "config.json").read_bytes()
    with pytest.raises(ConfigError, match=r"written by 2 processes and this run has 1 \(distributed.num_processes\)"):
        train(tiny(steps=6), str(tmp_path), devices=one_device())
    assert (tmp_path / "config.json").read_bytes() == before


# --- 8. Every numeric train knob is checked at config time ------------------------------------------------------


@pytest.mark.parametrize(
    ("knob", "value", "expected"),
    [
        ("checkpoint_every", 0, "train.checkpoint_every=0: expected an integer >= 1"),
        ("log_every", 0, "train.log_every=0: expected an integer >= 1"),
        ("steps", -5, "train.steps=-5: expected an integer >= 1"),
        ("lr", -1e-3, "train.lr=-0.001: expected a number > 0"),
        ("batch_size", -64, "train.batch_size=-64: expected an integer >= 1"),
        ("warmup_steps", -1, "train.warmup_steps=-1: expected an integer >= 0"),
        ("b2", 1.0, r"train.b2=1.0: expected a number in \[0, 1\)"),
        ("weight_decay", -0.1, "train.weight_decay=-0.1: expected a number >= 0"),
        ("grad_clip", -1.0, "train.grad_clip=-1.0: expected a number >= 0"),
        ("min_lr", 1.0, "train.min_lr=1.0: expected at most train.lr"),
        ("on_nonfinite", "ignore", "train.on_nonfinite='ignore': expected one of"),
        ("max_consecutive_skips", 0, "train.max_consecutive_skips=0: expected an integer >= 1"),
    ],
)
def test_bad_train_knobs_fail_before_anything_runs(tmp_path, knob, value, expected):
    config = tiny()
    config.train[knob] = value
    with pytest.raises(ConfigError, match=expected):
        train(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_a_batch_that_does_not_divide_the_data_axes_is_named(tmp_path):
    config = tiny()
    config.train.batch_size = 12  # 8 simulated devices
    with pytest.raises(ConfigError, match="train.batch_size=12: expected a multiple of mesh data x fsdp = 8"):
        train(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


# --- 4. SIGTERM at any moment (in-process: during a save) -------------------------------------------------------


@pytest.mark.promise
def test_sigterm_while_saving_stops_after_that_step_with_it_saved(tmp_path, monkeypatch):
    save = checkpoint_lib.save

    def save_then_signal(manager, step, *args):
        save(manager, step, *args)
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while the async save is being written

    monkeypatch.setattr(checkpoint_lib, "save", save_then_signal)
    with pytest.raises(Preempted) as stop:
        train(tiny(steps=9), str(tmp_path), devices=one_device())
    assert stop.value.code == 42 and stop.value.step == 4  # the step the signal arrived in, saved too
    assert steps_in(tmp_path / "checkpoints") == [3, 4]
    _, _, state = restore_state(str(tmp_path), devices=one_device())
    assert int(state.step) == 4


# --- 3, 4, 9. The command line: processes, signals, kills -------------------------------------------------------


def cli(workdir, *overrides, env_update=None, config="experiments/mae_digits.py"):
    env = {**os.environ, "XLA_FLAGS": xla_flags(), "PYTHONPATH": str(ROOT), **(env_update or {})}
    cmd = [sys.executable, "-m", "mmjax", "train", "--config", config, "--workdir", str(workdir), *overrides]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(proc, path, text, timeout=180):
    """Poll until `text` appears in the file `path` (or the process ends)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if path.exists() and text in path.read_text():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.promise
def test_sigterm_during_start_up_and_during_evaluation_exits_42(tmp_path):
    run, log = tmp_path / "run", tmp_path / "log.txt"
    quick = ["--config.train.steps=8", "--config.train.checkpoint_every=4", "--config.eval.linear_probe.steps=20"]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mmjax", "train", "--config", "experiments/mae_digits.py", "--workdir", str(run)]
            + quick,
            cwd=ROOT,
            env=dict(os.environ, XLA_FLAGS=xla_flags(), PYTHONPATH=str(ROOT)),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        assert wait_for(proc, log, "compiling the train step")
        proc.send_signal(signal.SIGTERM)  # while compiling: before, the process died with 143
        assert proc.wait(timeout=120) == 42, log.read_text()
    assert steps_in(run / "checkpoints") == []
    with open(log, "w") as out:
        proc = subprocess.Popen(
            proc.args, cwd=ROOT, env=dict(os.environ, XLA_FLAGS=xla_flags()), stdout=out, stderr=subprocess.STDOUT
        )
        assert wait_for(proc, log, "linear probe on")
        proc.send_signal(signal.SIGTERM)  # during the end-of-run evaluation
        assert proc.wait(timeout=120) == 42, log.read_text()
    assert steps_in(run / "checkpoints") == [4, 8] and not (run / "eval.json").exists()
    env = dict(os.environ, XLA_FLAGS=xla_flags())
    done = subprocess.run(proc.args, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is complete (step 8" in done.stdout and (run / "eval.json").exists()


@pytest.mark.promise
def test_kills_at_any_moment_then_resume_end_bitwise_equal_to_a_straight_run(tmp_path):
    # Checkpoints every step are written in the background, so a SIGKILL lands in the middle of a save
    # most of the time (three kills here, each a little later after its checkpoint); each rerun resumes
    # from the newest whole checkpoint, and the end is the same to the bit.
    steps = 16
    knobs = [f"--config.train.steps={steps}", "--config.train.checkpoint_every=1", "--config.train.log_every=2"]
    knobs += ["--config.eval.protocols=()", "--config.train.keep_checkpoints=2"]
    straight = cli(tmp_path / "straight", *knobs)
    killed_at = []
    for target in (3, 7, 11):
        proc = cli(tmp_path / "killed", *knobs)
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None:
            if max(steps_in(tmp_path / "killed" / "checkpoints"), default=0) >= target:
                break
            time.sleep(0.01)
        time.sleep(0.02 * len(killed_at))  # a little later each time: inside the next save, or between
        assert proc.poll() is None, proc.stdout.read()
        proc.kill()
        proc.wait()
        killed_at.append(max(steps_in(tmp_path / "killed" / "checkpoints")))
    resumed = cli(tmp_path / "killed", *knobs)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert f"resumed from step {killed_at[-1]}" in out or f"resumed from step {killed_at[-1] - 1}" in out
    straight_out, _ = straight.communicate(timeout=300)
    assert straight.returncode == 0, straight_out
    _, _, a = load_trained(str(tmp_path / "straight"), devices=one_device())
    _, _, b = load_trained(str(tmp_path / "killed"), devices=one_device())
    same(a, b)
    rows = strict_rows(tmp_path / "killed" / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(2, steps + 1, 2))  # no step twice after the kills
    assert len(steps_in(tmp_path / "killed" / "checkpoints")) == 2


def two_processes(workdir, *knobs):
    """The same `python -m mmjax train` in 2 processes of 2 CPU devices each, as a cluster launcher starts them."""
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = {"XLA_FLAGS": xla_flags(2), "MMJAX_COORDINATOR": f"localhost:{port}"}
    env["MMJAX_NUM_PROCESSES"] = "2"
    return [cli(workdir, *knobs, env_update={**env, "MMJAX_PROCESS_ID": str(pid)}) for pid in range(2)]


def outputs(procs, timeout=300):
    outs = []
    for proc in procs:
        try:
            outs.append(proc.communicate(timeout=timeout)[0])
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
    return outs


@pytest.mark.promise
@pytest.mark.multiprocess
def test_two_fsdp_processes_stop_together_on_sigterm_then_finish_with_the_default_evaluation(tmp_path):
    # A SIGTERM to one process stops both after the same step with its checkpoint; the rerun resumes,
    # evaluates and exits. Before: with an FSDP mesh, process 0 hung in the reconstruction figure (run on
    # parameters sharded across the processes) and process 1 in jax.distributed.shutdown.
    run = tmp_path / "run"
    knobs = ["--config.train.steps=10", "--config.mesh.fsdp=2", "--config.train.batch_size=16"]
    knobs += [
        "--config.train.log_every=1",
        "--config.train.checkpoint_every=1000",
        "--config.eval.linear_probe.steps=20",
    ]
    procs = two_processes(run, *knobs)
    deadline = time.time() + 240
    while time.time() < deadline and all(p.poll() is None for p in procs):
        if (run / "metrics.jsonl").exists() and len((run / "metrics.jsonl").read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    assert all(p.poll() is None for p in procs), "a process ended before the signal"
    procs[1].send_signal(signal.SIGTERM)  # only the non-chief process hears about it
    outs = outputs(procs)
    assert [p.returncode for p in procs] == [42, 42], outs
    stopped = [int(re.search(r"the last checkpoint is step (\d+)", out).group(1)) for out in outs]
    assert stopped[0] == stopped[1] < 10 and steps_in(run / "checkpoints") == [stopped[0]]

    outs = outputs(two_processes(run, *knobs))
    assert all(f"resumed from step {stopped[0]}" in out for out in outs[:1]), outs
    report = json.loads((run / "eval.json").read_text())
    assert report["step"] == 10 and {r["name"] for r in report["results"]} >= {"mae encoder", "random encoder"}
    assert (run / "reconstructions.png").exists()
    assert "| linear probe |" in outs[0] and "| linear probe |" not in outs[1]  # process 0 alone prints
    rows = strict_rows(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 11))

    # The 2-process checkpoint cannot be resumed by one process (each process's data position is saved).
    config = load_experiment("mae_digits", "steps=12")
    config.mesh.fsdp = 2
    config.train.batch_size = 16
    with pytest.raises(ConfigError, match="written by 2 processes"):
        train(config, str(run), devices=jax.devices()[:2])
