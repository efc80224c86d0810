"""The rough edges of issue [durability]: each test reproduces one and fails on the code before its fix.

Every error here is checked the way the command line prints it (`mmjax.errors.user_message`): one
line, naming the file, field or path it is about.
"""

import json
import logging
import os
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from mmjax.errors import user_message
from mmjax.evaluate.report import summarize
from mmjax.files import write_text_atomic
from mmjax.impute import MaskedImputer
from mmjax.impute.table import TableCodec
from mmjax.train import Preempted, load_trained, restore_state, train
from mmjax.train.metrics import MetricWriter
from mmjax.train.preemption import PreemptionWatcher
from mmjax.train.workdir import WorkdirBusyError, WorkdirLock
from tests.fault_model import tiny
from tests.helpers import ROOT
from tests.xla_flags import xla_flags


def one_device():
    return jax.devices()[:1]


def steps_in(folder):
    return sorted(int(d) for d in os.listdir(folder) if d.isdigit()) if os.path.isdir(folder) else []


def test_the_lock_is_removed_when_a_run_ends(tmp_path):
    train(tiny(steps=3), str(tmp_path), devices=one_device())
    assert not (tmp_path / ".lock").exists() and (tmp_path / "config.json").exists()


def test_a_run_waiting_on_a_removed_lock_file_locks_the_new_one(tmp_path):
    # The lock file is removed as a run ends; a run that opened it just before must not hold a lock on a file
    # no one else can see while a third run locks the new one.
    first = WorkdirLock(str(tmp_path)).__enter__()
    stale = open(tmp_path / ".lock")  # noqa: SIM115 - what a second run had opened before the first ended
    first.__exit__(None, None, None)
    second = WorkdirLock(str(tmp_path)).__enter__()
    with pytest.raises(WorkdirBusyError, match="in use by another run"):
        WorkdirLock(str(tmp_path)).__enter__()
    assert os.stat(tmp_path / ".lock").st_ino != os.fstat(stale.fileno()).st_ino
    stale.close()
    second.__exit__(None, None, None)


def test_a_fresh_start_that_fails_leaves_nothing_behind(tmp_path):
    # Before: `.lock` and an empty `checkpoints/` stayed in the new workdir.
    config = tiny(steps=3)
    run = tmp_path / "run"

    def broken(*args):
        raise ValueError("no data here")

    with pytest.raises(ValueError, match="no data here"):
        train(config, str(run), data_iterator=map(broken, range(3)), devices=one_device())
    assert not run.exists(), os.listdir(run)


def test_a_stop_during_start_up_changes_no_file(tmp_path):
    # Before: "the workdir is as it was" was printed after config.json had been rewritten with the new run's knobs.
    train(tiny(steps=3), str(tmp_path), devices=one_device())
    files = {name: (tmp_path / name).read_bytes() for name in ("config.json", "metrics.jsonl")}
    with PreemptionWatcher() as watcher:
        watcher.received = True  # a SIGTERM before the loop begins
        with pytest.raises(Preempted):
            train(tiny(steps=9, log_every=3), str(tmp_path), devices=one_device(), watcher=watcher)
    assert {name: (tmp_path / name).read_bytes() for name in files} == files


def test_two_writers_of_one_file_never_leave_it_half_written(tmp_path, monkeypatch):
    # A second writer runs to the end between the first one's write and its rename. Before: both wrote to
    # `<name>.tmp`, so the first rename found the second's file gone (or renamed a half-written one).
    path, real_replace = tmp_path / "eval.json", os.replace
    nested = []

    def replace(src, dst):
        if not nested:
            nested.append(True)
            write_text_atomic(path, json.dumps({"writer": 2}))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    write_text_atomic(path, json.dumps({"writer": 1}))
    assert json.loads(path.read_text()) == {"writer": 1}
    assert os.listdir(tmp_path) == ["eval.json"] and oct(path.stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"method": "mae", "step": 3, "results": [{"protocol": "linear probe"', "is not valid JSON"),
        (
            '{"method": "mae", "step": 3, "results": [{"protocol": "p", "name": "n", "metric": "m", "value": 1, '
            '"colour": 2}]}',
            r"results\[0\] has keys .*'colour'",
        ),
        ("[1, 2]", "is not an mmjax evaluation report"),
    ],
)
def test_summarize_names_a_damaged_report(tmp_path, text, expected):
    # Before: "Expecting ',' delimiter" without the file, and "internal error TypeError" for an unknown key.
    (tmp_path / "eval.json").write_text(text)
    with pytest.raises(ValueError, match=expected) as caught:
        summarize([str(tmp_path)])
    assert str(tmp_path / "eval.json") in user_message(caught.value) and "\n" not in str(caught.value)


def test_an_empty_table_is_called_empty():
    # Before: "column 0 has no observed value (all 0 cells missing)".
    with pytest.raises(ValueError, match=r"X is empty \(0 rows, 3 columns\): nothing to fit"):
        MaskedImputer().fit(np.zeros((0, 3)))


def test_a_huge_finite_value_gives_finite_statistics_and_fills():
    # Before: nanstd squared 1e200 to inf, so every missing cell of that column was filled with -inf.
    table = np.array([[1.0, 2.0], [1e200, np.nan], [3.0, 4.0], [np.nan, 5.0]])
    codec = TableCodec.fit(table)
    assert np.isfinite([codec.mean[0], codec.std[0]]).all() and codec.std[0] == pytest.approx(4.714e199, rel=1e-3)
    encoded = codec.encode(table)
    assert np.isfinite(encoded[~np.isnan(encoded)]).all()
    filled = codec.decode(np.nan_to_num(encoded), table)  # the column means, as a model that predicts 0 gives
    assert np.isfinite(filled).all() and filled[3, 0] == pytest.approx(np.nanmean(table[:, 0]), rel=1e-12)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs at `tmp_path/disk` (root only; skipped where mounting is not allowed)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)]).returncode:
        pytest.skip("needs a tmpfs mount (root)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk, leave):
    """Fill `disk` to `leave` free bytes."""
    stat = os.statvfs(disk)
    (disk / "filler").write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))


def test_a_full_disk_is_named_in_one_line_and_resuming_on_it_names_the_file(small_disk, capfd):
    # Before: "[Errno 28] No space left on device" with no path, after hundreds of lines of orbax's tracebacks.
    run = small_disk / "run"
    train(tiny(steps=3, checkpoint_every=1), str(run), devices=one_device())
    fill(small_disk, 20_000)
    capfd.readouterr()
    with pytest.raises(OSError) as caught:
        train(tiny(steps=300, checkpoint_every=1, keep_checkpoints=1000), str(run), devices=one_device())
    message = user_message(caught.value)
    assert "No space left on device" in message and str(run / "checkpoints") in message, message
    printed = "".join(capfd.readouterr())
    assert "Traceback" not in printed and "Event loop is closed" not in printed, printed[-2000:]
    assert max(steps_in(run / "checkpoints")) >= 3  # the last finished checkpoint stays
    fill(small_disk, 0)
    with pytest.raises(OSError) as caught:  # a rerun on the full disk: the lock file cannot be written
        train(tiny(steps=300, checkpoint_every=1, keep_checkpoints=1000), str(run), devices=one_device())
    assert "No space left on device" in user_message(caught.value) and str(run) in user_message(caught.value)


def test_eval_reads_a_run_that_keeps_one_checkpoint_while_it_trains(tmp_path):
    # Before: `eval` during a keep_checkpoints=1 run often found no finished checkpoint ("is it a training
    # workdir?"), or read one that the run deleted under it.
    run = tmp_path / "run"
    env = {**os.environ, "XLA_FLAGS": xla_flags(1), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "tests.fault_model", str(run), "100000", "checkpoint_every=1", "keep_checkpoints=1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while not steps_in(run / "checkpoints") and time.time() < deadline:
            time.sleep(0.01)
        seen = []
        for _ in range(12):
            assert proc.poll() is None, proc.stdout.read()
            seen.append(int(restore_state(str(run), devices=one_device(), say=lambda _: None)[2].step))
        assert len(set(seen)) > 3 and seen == sorted(seen)  # read while the run went on
    finally:
        proc.kill()
        proc.wait()


def test_loading_a_finished_run_is_quiet(tmp_path, caplog):
    # Before: "Given directory is read only", "setting save_interval_steps=0" and "Metadata file does not exist".
    train(tiny(steps=3), str(tmp_path), devices=one_device())
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="absl"):
        load_trained(str(tmp_path), devices=one_device())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_tensorboard_on_without_tensorboardx_says_so(tmp_path, capsys):
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        MetricWriter(str(tmp_path), tensorboard=True).close()
        assert "tensorboardX is not installed, so only metrics.jsonl is written" in capsys.readouterr().out
    else:
        pytest.skip("tensorboardX is installed here")


def test_one_process_saves_each_replicated_array_once(tmp_path, monkeypatch):
    # Orbax's replica-parallel default sliced every replicated array once per device, each slice a device
    # op (180 small arrays on 8 devices: 17.7 s for a first save, benchmarks/checkpoint_save.py); one
    # process writes every slice anyway, so each array is written whole, and restores the same.
    import orbax.checkpoint as ocp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from mmjax.train import checkpoint

    slices = []
    real_slice = jax.lax.slice_in_dim
    monkeypatch.setattr(jax.lax, "slice_in_dim", lambda *a, **k: slices.append(a[0].shape) or real_slice(*a, **k))
    mesh = jax.make_mesh((8,), ("data",))
    state = {f"w{i}": jax.device_put(np.full((4, 8), float(i), np.float32), NamedSharding(mesh, P())) for i in range(3)}
    manager = checkpoint.checkpoint_manager(str(tmp_path), async_save=False)
    checkpoint.save(manager, 1, state, None, {"seed": 0})
    manager.wait_until_finished()
    restored = manager.restore(1, args=ocp.args.Composite(state=ocp.args.StandardRestore(state)))["state"]
    manager.close()
    assert slices == []
    for name, value in state.items():
        np.testing.assert_array_equal(np.asarray(restored[name]), np.asarray(value))
