"""The evidence bench (`benchmarks/bench.py`) survives being stopped: a rerun skips finished runs and completes."""

import json
import os
import signal
import subprocess
import sys
import time

from tests.helpers import ROOT

TINY = {
    "model.width": 16,
    "model.depth": 1,
    "model.heads": 2,
    "model.mlp_dim": 32,
    "decoder.width": 16,
    "decoder.heads": 2,
    "decoder.mlp_dim": 32,
    "train.batch_size": 16,
    "train.warmup_steps": 1,
    "data.num_test": 100,
    "eval.protocols": "('knn',)",
    "eval.knn.k": 5,
}


def bench(root, results, *extra):
    args = [sys.executable, "benchmarks/bench.py", "--only", "mae", "--seeds", "2", "--steps", "4"]
    args += ["--curve-every", "2", "--root", str(root), "--results", str(results), "--markdown", str(root / "R.md")]
    args += [f"--set={key}={value}" for key, value in TINY.items()]
    return subprocess.Popen([*args, *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_the_list_names_every_system_with_its_base():
    out = subprocess.run(
        [sys.executable, "benchmarks/bench.py", "--list"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert {"mae", "hpm", "simmim", "jepa", "capi"} <= set(rows)
    assert "experiments/mae_hpm_mnist.py" in rows["hpm"] and "base: mae" in rows["hpm"]


def test_a_stopped_bench_resumes_without_redoing_finished_runs(tmp_path):
    root, results = tmp_path / "bench", tmp_path / "results.json"
    first = bench(root, results)
    done = root / "vision" / "mae" / "seed0" / "bench.json"
    deadline = time.time() + 400
    while time.time() < deadline and first.poll() is None and not done.exists():
        time.sleep(0.2)
    assert done.exists(), first.communicate()[0]
    first.send_signal(signal.SIGTERM)  # while the second seed starts or trains
    out, _ = first.communicate(timeout=300)
    assert first.returncode != 0 and not (root / "vision" / "mae" / "seed1" / "bench.json").exists(), out
    finished = {p: os.stat(p).st_mtime_ns for p in (done, done.with_name("eval.json"))}

    second = bench(root, results)
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out
    assert "mae seed 0: finished before, skipped" in out and "mae seed 1: done" in out
    assert {p: os.stat(p).st_mtime_ns for p in finished} == finished  # not evaluated again
    collected = json.loads(results.read_text())["vision"]["mae"]
    assert sorted(collected) == ["0", "1"] and all(run["steps"] == 4 for run in collected.values())
    assert set(collected["1"]["rows"]["kNN"]) == {"trained", "random encoder", "raw pixels"}
    history = json.loads((root / "vision" / "mae" / "seed1" / "eval.json").read_text())["history"]
    assert [entry["step"] for entry in history] == [2, 4]  # the curve: every --curve-every steps
    table = (root / "R.md").read_text()
    assert "<!-- bench -->" in table and "| mae | - |" in table and "(2)" in table  # two seeds in each cell
