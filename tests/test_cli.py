"""The command line as a new user meets it: everyday mistakes are one line, a finished workdir is never damaged."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import ROOT
from tests.xla_flags import xla_flags

QUICK = ["--config.train.batch_size=16", "--config.eval.linear_probe.steps=20", "--config.train.log_every=4"]


def mmjax(*args, env=None):
    """Start `python -m mmjax ARGS` on one CPU device; returns the Popen (stdout and stderr apart)."""
    env = {**os.environ, "XLA_FLAGS": xla_flags(), **(env or {})}
    cmd = [sys.executable, "-m", "mmjax", *map(str, args)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def digest(folder):
    """One hash over the bytes and names of every file under `folder` (the lock file aside)."""
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            if name != ".lock":
                path = os.path.join(root, name)
                h.update(os.path.relpath(path, folder).encode())
                h.update(open(path, "rb").read())
    return h.hexdigest()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 8-step mae_digits run with its evaluation."""
    workdir = tmp_path_factory.mktemp("finished") / "run"
    code, out, err = finish(
        mmjax("train", "--config", "experiments/mae_digits.py:steps=8", "--workdir", workdir, *QUICK)
    )
    assert code == 0, out + err
    return workdir


def test_a_rerun_with_another_model_leaves_the_finished_run_as_it_was(finished):
    before = digest(finished)
    code, out, err = finish(
        mmjax(
            "train", "--config", "experiments/mae_digits.py:steps=60", "--workdir", finished, "--config.model.width=64"
        )
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "model.width 32 -> 64" in lines[0] and "another --workdir" in lines[0]
    assert digest(finished) == before  # config.json and every checkpoint byte for byte
    code, out, err = finish(mmjax("eval", "--workdir", finished))
    assert code == 0, err
    assert "| linear probe | test | mae encoder | accuracy |" in out


def test_a_finished_run_shows_its_saved_results_and_summarize_reads_them(finished):
    code, out, err = finish(
        mmjax("train", "--config", "experiments/mae_digits.py:steps=8", "--workdir", finished, *QUICK)
    )
    assert code == 0, err
    assert "is complete (step 8" in out and "saved results of step 8" in out
    assert "linear probe on" not in out  # not evaluated again
    report = json.loads((finished / "eval.json").read_text())
    trained = next(r for r in report["results"] if not r["baseline"])
    code, out, err = finish(mmjax("summarize", finished, finished))
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith(f"| {finished} |")]
    assert len(rows) == 2 and f"{100 * trained['value']:.1f}%" in rows[0] and "random encoder" in rows[0]


def test_two_trainers_on_one_workdir(tmp_path):
    args = ["train", "--config", "experiments/mae_digits.py:steps=100000", "--workdir", tmp_path / "run", *QUICK]
    first = mmjax(*args)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "run" / "metrics.jsonl").exists():
        time.sleep(0.1)
    code, _, err = finish(mmjax(*args))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "is in use by another run (pid" in err and str(first.pid) in err
    first.kill()  # a crash: the lock goes with the process
    first.wait()
    rerun = [
        *args[:2],
        "experiments/mae_digits.py:steps=4",
        *args[3:],
        "--config.eval.protocols=('reconstruction_figure',)",
    ]
    code, out, err = finish(mmjax(*rerun))
    assert code == 0, err


def blocked_package(tmp_path, name):
    """A PYTHONPATH entry whose sitecustomize makes `import name` fail, as when the extra is not installed."""
    folder = tmp_path / "block"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, fullname, path=None, target=None):\n"
        f"        if fullname.split('.')[0] == {name!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {fullname!r}', name=fullname)\n"
        "sys.meta_path.insert(0, _Block())\n"
    )
    return {"PYTHONPATH": f"{folder}{os.pathsep}{ROOT}"}


def config_only_run(folder, experiment):
    """A workdir holding only the `config.json` of `experiment` (no checkpoint)."""
    from mmjax.train.checkpoint import write_config
    from mmjax.train.loop import config_as_dict
    from tests.helpers import load_experiment

    write_config(str(folder), config_as_dict(load_experiment(experiment)))
    return folder


def mistakes(tmp_path, finished):
    """(command line, env, expected exit status, texts the error must name)."""
    d = "experiments/mae_digits.py:steps=8"
    ft = ["finetune", "--config", "experiments/finetune_mnist.py", "--workdir"]
    no_checkpoint = config_only_run(tmp_path / "mae_no_checkpoint", "mae_mnist")
    return {
        "fine-tuning a run without a checkpoint": (
            [*ft, tmp_path / "k", "--from", no_checkpoint],
            {},
            2,
            ["no checkpoint in", str(no_checkpoint)],
        ),
        "misspelt override": (
            ["train", "--config", d, "--workdir", tmp_path / "a", "--config.train.stepz=3"],
            {},
            2,
            ["--config.train.stepz", "unknown field train.stepz (did you mean train.steps?)"],
        ),
        "missing experiment file": (
            ["train", "--config", "experiments/mae_mnits.py", "--workdir", tmp_path / "b"],
            {},
            2,
            ["experiments/mae_mnits.py", "did you mean experiments/mae_mnist.py?"],
        ),
        "a workdir that is a file": (
            ["train", "--config", d, "--workdir", ROOT / "README.md"],
            {},
            2,
            ["--workdir", "README.md is a file; expected a directory"],
        ),
        "a boolean that is not one": (
            ["train", "--config", d, "--workdir", tmp_path / "j", "--config.eval.kind_probe.raw_input=maybe"],
            {},
            2,
            ["--config.eval.kind_probe.raw_input=maybe: expected true or false, got 'maybe'"],
        ),
        "eval on an empty directory": (["eval", "--workdir", tmp_path], {}, 2, ["no checkpoint", str(tmp_path)]),
        "eval of an unknown step": (["eval", "--workdir", finished, "--step", "7"], {}, 2, ["step 7", "[8]"]),
        "no such image folder": (
            [
                "train",
                "--config",
                d,
                "--workdir",
                tmp_path / "c",
                "--config.data.source=imagefolder",
                "--config.data.path=/no/such/folder",
            ],
            {},
            2,
            ["data.path", "/no/such/folder"],
        ),
        "a NaN": (
            ["train", "--config", d, "--workdir", tmp_path / "d", "--config.train.lr=1e10", *QUICK],
            {},
            1,
            ["error: step 3: loss=nan", "rerun"],
        ),
        "distillation without a teacher": (
            ["train", "--config", "experiments/distill_mnist.py", "--workdir", tmp_path / "e"],
            {},
            2,
            ["distill.teacher_workdir"],
        ),
        "BEiT without a tokenizer": (
            ["train", "--config", "experiments/beit_mnist.py:tokenizer=/no/tokenizer", "--workdir", tmp_path / "f"],
            {},
            2,
            ["beit.tokenizer_workdir", "/no/tokenizer"],
        ),
        "a mesh that does not divide the devices": (
            ["train", "--config", d, "--workdir", tmp_path / "g", "--config.mesh.fsdp=2"],
            {},
            2,
            ["mesh=", "xla_force_host_platform_device_count"],
        ),
        "export without safetensors": (
            ["export", "--workdir", finished, "--format", "safetensors", "--out", tmp_path / "h"],
            blocked_package(tmp_path, "safetensors"),
            2,
            ["safetensors", "pip install 'mmjax[export]'"],
        ),
        "a bad number": (
            ["train", "--config", d, "--workdir", tmp_path / "i", "--config.train.checkpoint_every=0"],
            {},
            2,
            ["train.checkpoint_every=0", "expected an integer >= 1"],
        ),
    }


def test_everyday_mistakes_are_one_line_errors(tmp_path, finished):
    cases = mistakes(tmp_path, finished)
    names, results = list(cases), {}
    for pair in (names[i : i + 2] for i in range(0, len(names), 2)):  # two at a time, on two cores
        procs = {name: mmjax(*cases[name][0], env=cases[name][1]) for name in pair}
        results.update({name: finish(proc) for name, proc in procs.items()})
    for name, (code, _, err) in results.items():
        _, _, status, texts = cases[name]
        lines = err.strip().splitlines()
        assert code == status, (name, code, err)
        assert 1 <= len(lines) <= 3 and "Traceback" not in err, (name, err)
        for text in texts:
            assert text in err, (name, text, err)
    # A run that never started leaves no workdir behind (no stray config.json).
    assert not (tmp_path / "c").exists() and not (tmp_path / "g").exists() and not (tmp_path / "h").exists()
    assert not (tmp_path / "k").exists() and not (tmp_path / "l").exists()


def test_help_per_command_the_experiment_list_and_the_version():
    # Before: --help exited 1 and every command printed the same global help; `list` and --version did not exist.
    procs = {
        "help": mmjax("--help"),
        "train": mmjax("train", "--help"),
        "export": mmjax("export", "-h"),
        "version": mmjax("--version"),
        "list": mmjax("list"),
    }
    done = {name: finish(proc) for name, proc in procs.items()}
    assert all(code == 0 for code, _, _ in done.values()), done
    for command in ("train", "finetune", "eval", "export", "sample", "summarize", "config", "list"):
        assert f"\n  {command} " in done["help"][1]
    train, export = done["train"][1], done["export"][1]
    assert "--restart" in train and "--config " in train and "--format" not in train and "--num" not in train
    assert "--format" in export and "--pool" in export and "--config " not in export and "--restart" not in export
    assert re.fullmatch(r"mmjax \d+\.\d+\.\d+\n", done["version"][1])
    listed = done["list"][1]
    for path in sorted((ROOT / "experiments").glob("*.py")):
        assert f"experiments/{path.name}  " in listed
    assert "experiments/mae_digits.py  MAE on scikit-learn's bundled 8x8 digits" in listed
    assert "variants: steps=200" in listed


def test_ctrl_c_saves_the_step_and_a_rerun_resumes_from_it(tmp_path):
    # Before: Ctrl-C exited 130 with a ~50-line KeyboardInterrupt traceback from grain, and saved nothing.
    run = tmp_path / "run"
    args = ["train", "--config", "experiments/mae_digits.py:steps=100000", "--workdir", run, *QUICK]
    first = mmjax(*args, "--config.eval.protocols=('reconstruction_figure',)")
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "metrics.jsonl").exists():
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    code, out, err = finish(first)
    assert code == 130 and "Traceback" not in err, out + err
    step = int(re.search(r"stopped after step (\d+): checkpoint saved", out).group(1))
    assert f"interrupted: the last checkpoint is step {step}" in out
    assert str(step) in os.listdir(run / "checkpoints")
    second = mmjax(*args, "--config.eval.protocols=('reconstruction_figure',)")
    seen = []
    while second.poll() is None and not any(f"resumed from step {step}" in line for line in seen):
        seen.append(second.stdout.readline())
    second.send_signal(signal.SIGINT)  # twice: the second leaves at once
    time.sleep(0.05)
    second.send_signal(signal.SIGINT)
    code, out, err = finish(second)
    assert code == 130 and "Traceback" not in err and "second Ctrl-C: exiting now" in out, "".join(seen) + out + err


def test_a_folder_without_a_test_split_is_scored_on_a_held_out_part(tmp_path):
    # Before: with only data.path, the probe fitted and scored on the same images and called that `split: test`.
    from tests.test_data import write_image_tree

    write_image_tree(tmp_path / "images", n=40)
    run = tmp_path / "run"
    folder = ["--config.data.source=imagefolder", f"--config.data.path={tmp_path / 'images'}"]
    code, out, err = finish(
        mmjax("train", "--config", "experiments/mae_digits.py:steps=4", "--workdir", run, *QUICK, *folder)
    )
    assert code == 0, out + err
    rows = json.loads((run / "eval.json").read_text())["results"]
    assert rows and {r["split"] for r in rows} == {"held-out 1/10 of data.path"}
    assert "| test |" not in out and "| held-out 1/10 of data.path |" in out


def test_imputing_a_users_csv_is_evaluated_and_summarized(tmp_path):
    # Before: `imputed.csv` was written, then "nothing to evaluate (every evaluation ... switched off)", no
    # eval.json, and `summarize` sent the user to `eval`, which wrote nothing either.
    rng = np.random.default_rng(0)
    factor = rng.normal(size=(80, 1))
    table = factor * np.array([[1.0, 2.0, -1.0, 0.5]]) + 0.1 * rng.normal(size=(80, 4)) + 10.0
    table[rng.random(table.shape) < 0.2] = np.nan
    lines = ["a,b,c,d"] + [",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in table]
    (tmp_path / "table.csv").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    code, out, err = finish(
        mmjax(
            "train",
            "--config",
            f"experiments/remasker_wine.py:source={tmp_path / 'table.csv'},steps=60",
            "--workdir",
            run,
        )
    )
    assert code == 0 and "nothing to" not in out, out + err
    rows = json.loads((run / "eval.json").read_text())["results"]
    assert {r["name"] for r in rows} == {"remasker", "column means", "KNN imputer (k=5)"}
    assert {r["split"] for r in rows} == {"observed cells hidden again (1/10, seen in training)"}
    assert (run / "imputed.csv").exists()
    code, out, err = finish(mmjax("summarize", run))
    assert code == 0 and "KNN imputer (k=5)" in out, out + err
