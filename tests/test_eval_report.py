"""Every method's end-of-run evaluation writes `eval.json` / `eval.md`, and `summarize` reads them all.

Each method's bundled experiment, shrunk (one block of width 16, small data, 10-step probes),
evaluated on freshly initialized parameters: the evaluation is what is under test, so no
training is needed, except the two runs other methods load (a VQ tokenizer, an MAE teacher).
"""

import dataclasses
import json
import math

import jax
import pytest

from mmjax.data.kinds import data_kind
from mmjax.evaluate import evaluate_pretraining
from mmjax.evaluate.report import load_report, set_aside_damaged, summarize, write_report
from mmjax.methods import EvalResult, available_methods
from mmjax.train import build_method, load_frozen
from tests.experiment_helpers import write_finished_run
from tests.helpers import load_experiment

SMALL = {"width": 16, "depth": 1, "heads": 2, "mlp_dim": 32}
EXPERIMENTS = {
    "mae": "mae_digits",
    "simmim": "simmim_mnist",
    "vq": "vq_mnist",
    "beit": "beit_mnist",
    "distill": "distill_mnist",
    "finetune": "finetune_mnist",
    "jepa": "jepa_mnist",
    "grid_jepa": "ajepa_synth",
    "maskgit": "maskgit_digits",
    "vae": ("continuous_digits", "stage=vae"),
    "givt": ("continuous_digits", "stage=givt"),
    "mar": ("continuous_digits", "stage=mar"),
    "mlm": "mlm_pydoc",
    "remasker": "remasker_wine",
    "videomae": "videomae_moving_digits",
    "audiomae": "audiomae_synth",
    "patchtst": "patchtst_series",
    "timesbert": "timesbert_series",
    "pointmae": "pointmae_shapes",
}


def shrink(config):
    for section in ("model", "decoder", "predictor"):
        if section in config and "width" in config[section]:
            config[section].update({k: v for k, v in SMALL.items() if k in config[section]})
    data = config.data
    for key, value in (("num_train", 64), ("num_test", 32)):
        if key in data:
            data[key] = value
    if data.get("source") == "mnist":
        data.num_test = 100
    for probe in ("linear_probe", "kind_probe", "points_probe", "series"):
        config.eval[probe].steps = 10
    if "sample" in config:
        config.sample.update(per_class=2, metrics_per_class=4, steps=2)
    config.train.update(steps=1, batch_size=16, warmup_steps=0, log_every=1, checkpoint_every=1, tensorboard=False)
    return config


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """method -> the workdir its evaluation wrote (each method at tiny size, untrained)."""
    root = tmp_path_factory.mktemp("eval_report")
    needed = {}  # the runs other methods load: a tokenizer and a teacher, one step each
    upstream = (
        ("vq_mnist", "vq_mnist", None),
        ("digits_vq", "maskgit_digits", "stage=tokenizer"),
        ("digits_vae", "continuous_digits", "stage=vae"),
    )
    # Finished runs as the trainer leaves them (config.json and a checkpoint of a fresh state, written
    # by its own functions), not trained: what the methods read from them is the same, and training
    # compiled four update steps, two minutes of this fixture on 2 CPU cores.
    for name, experiment, arg in upstream:
        config = load_experiment(experiment, arg)  # full size: maskgit_digits names its tokenizer's shape
        config.train.update(steps=1, batch_size=16, checkpoint_every=1, tensorboard=False)
        write_finished_run(config, str(root / name), step=1)
        needed[name] = str(root / name)
    write_finished_run(shrink(load_experiment("mae_mnist")), str(root / "teacher"), step=1)
    workdirs = {}
    for method, experiment in EXPERIMENTS.items():
        config = shrink(load_experiment(*experiment) if isinstance(experiment, tuple) else load_experiment(experiment))
        if method in ("givt", "mar"):
            config[method].tokenizer_workdir = needed["digits_vae"]
        if method == "beit":
            config.beit.tokenizer_workdir = needed["vq_mnist"]
        if method == "distill":
            config.distill.teacher_workdir = str(root / "teacher")
        if method == "finetune":
            config.finetune.from_workdir = str(root / "teacher")
        if method == "maskgit":
            config.maskgit.tokenizer_workdir = needed["digits_vq"]
        built = build_method(config)
        example = data_kind(config.data).example_batch(config.data)
        params = jax.jit(built.init)(jax.random.key(0), example)
        params = load_frozen(built, params)
        workdirs[method] = root / method
        workdirs[method].mkdir()
        evaluate_pretraining(config, built, params, str(workdirs[method]), step=1)
    return workdirs


def test_every_registered_method_is_covered():
    assert set(EXPERIMENTS) >= {m for m in available_methods() if not m.startswith(("test_", "fault_"))}


@pytest.mark.parametrize("method", sorted(EXPERIMENTS))
def test_every_method_writes_its_results(evaluated, method):
    workdir = evaluated[method]
    saved = json.loads((workdir / "eval.json").read_text())
    assert saved["step"] == 1 and saved["method"] == method
    rows = load_report(str(workdir))["results"]
    assert rows, f"{method} reported nothing"
    assert any(not r.baseline for r in rows) and any(r.baseline for r in rows)  # the model and what to beat
    for r in rows:
        assert r.protocol and r.name and r.metric and math.isfinite(r.value), r
        if "accuracy" in r.metric or "usage" in r.metric:
            assert 0.0 <= r.value <= 1.0, r
    table = (workdir / "eval.md").read_text()
    assert table.count("\n| ") == len(rows) + 2  # the header, its rule and a line per row


def test_summarize_prints_one_table_over_every_run(evaluated):
    table = summarize([str(evaluated[m]) for m in sorted(EXPERIMENTS)])
    lines = table.splitlines()
    assert lines[0].startswith("| run | method | step | protocol |")
    for method, workdir in evaluated.items():
        assert any(line.startswith(f"| {workdir} | {method} | 1 |") for line in lines), method


def test_each_evaluation_joins_the_history_and_one_of_a_step_again_replaces_it(tmp_path):
    def row(value):
        return [EvalResult("kNN", "mae encoder", "accuracy", value)]

    for step, value in ((4, 0.4), (2, 0.2), (6, 0.6), (4, 0.45)):
        write_report(str(tmp_path), step=step, method="mae", data="digits", results=row(value))
    report = load_report(str(tmp_path))
    assert report["step"] == 4 and report["results"] == row(0.45)  # the top level: the evaluation written last
    assert [(e["step"], e["results"][0]["value"]) for e in report["history"]] == [(2, 0.2), (4, 0.45), (6, 0.6)]


def test_a_report_written_before_the_history_keeps_its_evaluation(tmp_path):
    rows = [dataclasses.asdict(EvalResult("kNN", "m", "accuracy", 0.3))]
    old = {"step": 3, "method": "mae", "data": "digits", "results": rows}
    (tmp_path / "eval.json").write_text(json.dumps(old))
    write_report(str(tmp_path), step=5, method="mae", data="digits", results=[EvalResult("kNN", "m", "accuracy", 0.5)])
    assert [e["step"] for e in load_report(str(tmp_path))["history"]] == [3, 5]
    (tmp_path / "eval.json").write_text(json.dumps({**old, "history": [{"step": "three"}]}))
    with pytest.raises(ValueError, match="history is not a list of"):
        load_report(str(tmp_path))


def test_a_damaged_report_is_set_aside_before_an_evaluation_writes_a_new_one(tmp_path):
    assert set_aside_damaged(str(tmp_path)) is None  # none there
    (tmp_path / "eval.json").write_text('{"method": "mae", "step": 3, "res')
    moved = set_aside_damaged(str(tmp_path))
    assert moved == str(tmp_path / "eval.json.damaged") and not (tmp_path / "eval.json").exists()
    assert (tmp_path / "eval.json.damaged").read_text() == '{"method": "mae", "step": 3, "res'
