"""The faults of the trainer's guarantees, reproduced through `python -m mmjax` in a source tree.

    python benchmarks/faults_repro.py TREE OUT [CHECKS]

runs each fault (mae_digits, evaluation off unless stated) with the mmjax of TREE (a checkout;
compare an older commit with `git worktree add /tmp/old <commit>`) in folders under OUT, and
prints one line per check: NaN checkpoints (1), keep_checkpoints=0 (2), a 2-process FSDP run
with the default evaluation (3), SIGTERM at start-up and during evaluation (4), a truncated
newest checkpoint (5), metrics after SIGKILL and NaN rows (6), a new batch size on resume (7),
bad numeric knobs (8). CHECKS: a comma-separated subset, e.g. `1,5`. Minutes on 2 CPU cores.
tests/test_faults.py asserts the same behaviour; this script shows it side by side for two trees.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

TREE, OUT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
ONLY = sys.argv[3].split(",") if len(sys.argv) > 3 else None
PY = sys.executable
ENV = {**os.environ, "XLA_FLAGS": "", "PYTHONPATH": TREE}
NOEVAL = ["--config.eval.protocols=()"]
shutil.rmtree(OUT, ignore_errors=True)
os.makedirs(OUT)


def run(*args, timeout=600, env=None):
    cmd = [PY, "-m", "mmjax", *map(str, args)]
    p = subprocess.run(cmd, cwd=TREE, env={**ENV, **(env or {})}, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def popen(*args):
    cmd = [PY, "-m", "mmjax", *map(str, args)]
    return subprocess.Popen(cmd, cwd=TREE, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def steps(w):
    d = os.path.join(w, "checkpoints")
    return sorted(int(s) for s in os.listdir(d) if s.isdigit()) if os.path.isdir(d) else []


def nonfinite_leaves(w, step):
    import numpy as np
    import orbax.checkpoint as ocp

    tree = ocp.StandardCheckpointer().restore(os.path.abspath(os.path.join(w, "checkpoints", str(step), "state")))
    import jax

    leaves = [np.asarray(x) for x in jax.tree.leaves(tree)]
    bad = sum(1 for x in leaves if np.issubdtype(x.dtype, np.inexact) and not np.isfinite(x).all())
    big = max(float(np.abs(x).max()) for x in leaves if np.issubdtype(x.dtype, np.inexact) and x.size)
    return bad, big


def rejected(w):
    folder = os.path.join(w, "rejected_checkpoints")
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def report(name, text):
    print(f"{name}: {text}", flush=True)


def want(name):
    return ONLY is None or name in ONLY


D = "experiments/mae_digits.py"

if want("1"):
    for lr in ("1e3", "1e10"):
        w = f"{OUT}/nan{lr}"
        code, out, err = run(
            "train",
            "--config",
            f"{D}:steps=40",
            "--workdir",
            w,
            f"--config.train.lr={lr}",
            "--config.train.checkpoint_every=5",
            *NOEVAL,
        )
        kept = steps(w)
        info = [f"{s}:{nonfinite_leaves(w, s)}" for s in kept]
        last = (err.strip().splitlines() or [""])[-1][:160]
        report(
            f"1 lr={lr}",
            f"exit {code}; kept checkpoints (step:(nonfinite leaves, max |x|)) {info}; "
            f"rejected {rejected(w)}; last stderr line: {last}",
        )
        if kept:
            code2, out2, err2 = run("train", "--config", f"{D}:steps=40", "--workdir", w, *NOEVAL)
            report(
                f"1 lr={lr} resume lr=default",
                f"exit {code2}; last stderr line: {(err2.strip().splitlines() or [''])[-1][:160]}",
            )

if want("2"):
    w = f"{OUT}/keep0"
    code, out, err = run(
        "train",
        "--config",
        f"{D}:steps=20",
        "--workdir",
        w,
        "--config.train.keep_checkpoints=0",
        "--config.train.checkpoint_every=5",
        *NOEVAL,
    )
    report(
        "2 keep=0",
        f"exit {code}; checkpoints left {steps(w)}; stderr {err.strip().splitlines()}",
    )

if want("4"):
    w = f"{OUT}/term_start"
    p = popen("train", "--config", f"{D}:steps=40", "--workdir", w, *NOEVAL)
    time.sleep(4)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=300)
    report("4 SIGTERM at start-up (4 s)", f"exit {p.returncode}")
    w = f"{OUT}/term_eval"
    p = popen("train", "--config", f"{D}:steps=20", "--workdir", w)
    t0 = time.time()
    while not os.path.exists(os.path.join(w, "checkpoints", "20")) and time.time() - t0 < 300:
        time.sleep(0.2)
    time.sleep(3)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=300)
    report("4 SIGTERM during evaluation", f"exit {p.returncode}; checkpoints {steps(w)}")

if want("5"):
    for what in ("tensor", "iterator"):
        w = f"{OUT}/corrupt_{what}"
        run("train", "--config", f"{D}:steps=10", "--workdir", w, "--config.train.checkpoint_every=5", *NOEVAL)
        top = os.path.join(w, "checkpoints", "10")
        victim = None
        for root, _, files in os.walk(top):
            for f in files:
                path = os.path.join(root, f)
                if what == "iterator" and f.endswith(".json") and "data" in root:
                    victim = path
                if what == "tensor" and "state" in root and "ocdbt" in root and "d" == os.path.basename(root):
                    victim = path if victim is None or os.path.getsize(path) > os.path.getsize(victim) else victim
        size = os.path.getsize(victim)
        with open(victim, "r+b") as fh:
            fh.truncate(size // 2)
        code, out, err = run(
            "train", "--config", f"{D}:steps=15", "--workdir", w, "--config.train.checkpoint_every=5", *NOEVAL
        )
        lines = err.strip().splitlines()
        report(
            f"5 truncated {what} ({os.path.relpath(victim, w)})",
            f"exit {code}; stderr lines {len(lines)}; checkpoints after {steps(w)}; "
            f"'Event loop is closed' x{err.count('Event loop is closed')}",
        )

if want("6"):
    w = f"{OUT}/kill"
    p = popen(
        "train",
        "--config",
        f"{D}:steps=200",
        "--workdir",
        w,
        "--config.train.log_every=1",
        "--config.train.checkpoint_every=10",
        *NOEVAL,
    )
    t0 = time.time()
    while time.time() - t0 < 300:
        rows = (
            open(os.path.join(w, "metrics.jsonl")).read().splitlines()
            if os.path.exists(os.path.join(w, "metrics.jsonl"))
            else []
        )
        if len(rows) >= 25:
            break
        time.sleep(0.05)
    p.kill()
    p.communicate()
    run(
        "train",
        "--config",
        f"{D}:steps=30",
        "--workdir",
        w,
        "--config.train.log_every=1",
        "--config.train.checkpoint_every=10",
        *NOEVAL,
    )
    rows = [json.loads(r)["step"] for r in open(os.path.join(w, "metrics.jsonl")).read().splitlines() if r.strip()]
    dup = len(rows) - len(set(rows))
    report("6 SIGKILL + resume", f"metrics rows {len(rows)}, distinct steps {len(set(rows))}, duplicated rows {dup}")
    w = f"{OUT}/nanrow"
    run(
        "train",
        "--config",
        f"{D}:steps=20",
        "--workdir",
        w,
        "--config.train.lr=1e3",
        "--config.train.log_every=1",
        *NOEVAL,
    )
    bad = 0
    for r in open(os.path.join(w, "metrics.jsonl")).read().splitlines():
        try:
            json.loads(r, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except ValueError:
            bad += 1
    report("6 NaN metrics row", f"rows that are not strict JSON: {bad}")

if want("7"):
    w = f"{OUT}/bs"
    run("train", "--config", f"{D}:steps=10", "--workdir", w, "--config.train.checkpoint_every=5", *NOEVAL)
    shutil.rmtree(os.path.join(w, "checkpoints", "10"))
    data = [
        os.path.join(r, f)
        for r, _, fs in os.walk(os.path.join(w, "checkpoints", "5"))
        for f in fs
        if "data" in r and f.endswith(".json")
    ]
    before = open(data[0]).read()[:200] if data else "none"
    code, out, err = run(
        "train",
        "--config",
        f"{D}:steps=10",
        "--workdir",
        w,
        "--config.train.checkpoint_every=5",
        "--config.train.batch_size=32",
        *NOEVAL,
    )
    report(
        "7 batch 64 -> 32 on resume",
        f"exit {code}; saved data position at step 5: {before!r}; "
        f"said: {[line for line in (out + err).splitlines() if 'batch_size' in line][:2]}",
    )

if want("8"):
    for knob in (
        "train.checkpoint_every=0",
        "train.log_every=0",
        "train.steps=-5",
        "train.lr=-1e-3",
        "train.batch_size=-64",
        "train.batch_size=60",
    ):
        w = f"{OUT}/knob_{knob.replace('=', '_')}"
        env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"} if knob.endswith("60") else None
        extra = ["--config.mesh.data=8"] if knob.endswith("60") else []
        code, out, err = run(
            "train", "--config", f"{D}:steps=20", "--workdir", w, f"--config.{knob}", *extra, *NOEVAL, env=env
        )
        lines = err.strip().splitlines()
        report(
            f"8 {knob}",
            f"exit {code}; stderr lines {len(lines)}; names field: {knob.split('=')[0] in err}; "
            f"last: {lines[-1][:140] if lines else ''}",
        )

if want("3"):
    # two processes x 2 devices, FSDP, default evaluation
    w = f"{OUT}/fsdp"
    procs = []
    for pid in range(2):
        cmd = [
            PY,
            "-m",
            "mmjax",
            "train",
            "--config",
            f"{D}:steps=20",
            "--workdir",
            w,
            "--config.mesh.fsdp=2",
            "--config.train.batch_size=16",
            "--config.eval.linear_probe.steps=20",
        ]
        env = {
            **ENV,
            "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
            "MMJAX_COORDINATOR": "localhost:12391",
            "MMJAX_NUM_PROCESSES": "2",
            "MMJAX_PROCESS_ID": str(pid),
        }
        procs.append(
            subprocess.Popen(cmd, cwd=TREE, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    t0 = time.time()
    codes = []
    for p in procs:
        try:
            p.communicate(timeout=max(1, 400 - (time.time() - t0)))
            codes.append(p.returncode)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            codes.append("hung (killed after 400 s)")
    report("3 two-process FSDP, default eval", f"exit codes {codes} after {time.time() - t0:.0f} s")
