"""Config sections declared once: defaults, types, limits and misspelt fields, and `python -m mmjax config`."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import ml_collections
import pytest

from mmjax.config import ConfigError, complete_section, dataclass_from_config, knob, section_config
from mmjax.train.defaults import RUNTIME_SECTIONS, TrainSection, training_sections
from mmjax.train.optimizer import train_section
from mmjax.train.validate import check_runtime_config
from mmjax.train.workdir import config_changes
from tests.helpers import load_experiment

pytestmark = pytest.mark.promise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Example:
    ratio: float = knob(0.5, "a share", low=0, high=1, high_open=True)
    count: int = knob(3, "how many", low=1)
    name: str = knob("a", "one of three", choices=("a", "b", "c"))
    optional: float | None = knob(None, "unset by default", low=0)
    sizes: tuple[int, ...] = knob((1, 2), "a tuple")
    pair: int | tuple[int, int] = knob(4, "a side or a pair")
    flag: bool = knob(False, "a switch")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("ratio", 1.0, r"ex.ratio=1.0: expected a number in \[0, 1\)"),
        ("ratio", "half", "ex.ratio='half': expected a number"),
        ("count", 0, "ex.count=0: expected an integer >= 1"),
        ("count", 2.5, "ex.count=2.5: expected an integer"),
        ("count", True, "ex.count=True: expected an integer"),
        ("name", "d", r"ex.name='d': expected one of \('a', 'b', 'c'\)"),
        ("optional", -1.0, "ex.optional=-1.0: expected a number >= 0"),
        ("sizes", (1, "x"), "ex.sizes=\\(1, 'x'\\): expected a tuple of integers"),
        ("pair", (1, 2, 3), r"ex.pair=\(1, 2, 3\): expected an integer or a tuple of 2"),
        ("flag", 1, "ex.flag=1: expected true or false"),
        ("ratio", float("nan"), "ex.ratio=nan: expected a number"),
    ],
)
def test_a_bad_value_names_the_field_the_value_and_what_is_allowed(field, value, expected):
    with pytest.raises(ConfigError, match=expected):
        dataclass_from_config(Example, {field: value}, "ex")


def test_values_are_coerced_to_their_declared_type():
    out = dataclass_from_config(Example, {"ratio": 0, "sizes": [3, 4], "pair": [2, 3], "optional": 2}, "ex")
    assert (out.ratio, out.sizes, out.pair, out.optional) == (0.0, (3, 4), (2, 3), 2.0)
    assert isinstance(out.ratio, float) and isinstance(out.optional, float)
    assert dataclass_from_config(Example, {"count": None}, "ex").count == 3  # None = the declared default


def test_a_misspelt_field_names_the_nearest_valid_one():
    with pytest.raises(ConfigError, match=r"unknown field ex.cuont \(did you mean ex.count\?\); ex has ratio, count"):
        dataclass_from_config(Example, {"cuont": 2}, "ex")


def test_the_section_config_is_the_declaration_and_every_field_can_be_set_later():
    section = section_config(Example, count=5)
    assert section.to_dict() == {
        "ratio": 0.5,
        "count": 5,
        "name": "a",
        "optional": None,
        "sizes": (1, 2),
        "pair": 4,
        "flag": False,
    }
    section.lock()
    section.optional = 0.25  # a None field keeps its type: settable, also from the command line
    assert section.optional == 0.25
    with pytest.raises(TypeError):
        section.count = "many"


def test_a_section_missing_a_declared_field_is_completed_with_its_default():
    section = ml_collections.ConfigDict({"count": 7})
    section.lock()
    complete_section(Example, section, "ex")
    assert section.count == 7 and section.sizes == (1, 2) and section.optional is None


def test_runtime_sections_come_from_their_declarations():
    config = training_sections(ml_collections.ConfigDict({"method": "mae"}))
    for name, declaration in RUNTIME_SECTIONS.items():
        section = {k: v for k, v in config[name].items() if not isinstance(v, ml_collections.ConfigDict)}
        defaults = {f.name: f.default for f in dataclasses.fields(declaration)}
        if name == "eval":  # its protocols' sections: tests/test_eval_protocols.py
            defaults["protocols"] = ("linear_probe", "reconstruction_figure")  # mae's own
        assert section == defaults, name
    # A config saved before a knob existed reads as if it had the default.
    del config.train["no_decay"]
    check_runtime_config(config)
    assert config.train.no_decay == TrainSection().no_decay


def test_the_optimizer_reads_partial_train_sections_with_declared_defaults():
    train = train_section({"lr": 1e-3, "steps": 10})
    assert train.weight_decay_end is None and train.no_decay == TrainSection().no_decay and train.b2 == 0.95
    with pytest.raises(ConfigError, match="train.stepz"):
        train_section({"stepz": 10})


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run(
        [sys.executable, "-m", "mmjax", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_config_command_prints_the_checked_config_and_what_the_command_line_changed():
    proc = run_cli(
        "config",
        "--config",
        "experiments/mae_mnist.py:runlocal",
        "--config.train.steps=7",
        "--config.train.weight_decay_end=0.2",
        "--config.train.no_decay=('.*bias',)",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "train.steps = 7" in lines and "train.weight_decay_end = 0.2" in lines
    assert "train.no_decay = ['.*bias']" in lines
    changed = lines[lines.index("# set on the command line: 3") + 1 :][:3]
    assert [c.split(":")[0].strip("# ") for c in changed] == ["train.no_decay", "train.steps", "train.weight_decay_end"]
    assert "#   model.width: None -> 32" in lines  # set by the experiment file, against mae's defaults
    assert lines[-1] == "# valid: the checks of `train` pass for mae"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("--config.train.stepz=5", "error: --config.train.stepz: unknown field train.stepz (did you mean train.steps?"),
        ("--config.train.lr=-1", "error: train.lr=-1.0: expected a number > 0"),
        ("--config.train.on_nonfinite=ignore", "error: train.on_nonfinite='ignore': expected one of ('stop', 'skip')"),
    ],
)
def test_config_command_refuses_a_bad_field_in_one_line(override, expected):
    proc = run_cli("config", "--config", "experiments/mae_mnist.py", override)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and proc.stderr.startswith(expected), proc.stderr
    assert proc.stdout == ""


def test_saved_configs_are_plain_json():
    config = training_sections(ml_collections.ConfigDict({"method": "mae"}))
    assert json.loads(json.dumps(config.to_dict()))["train"]["weight_decay_end"] is None


def test_a_run_saved_before_a_section_was_declared_resumes_at_its_defaults():
    new = json.loads(json.dumps(load_experiment("mae_digits").to_dict()))
    saved = json.loads(json.dumps(new))
    for section in ("mask", "target", "loss"):
        del saved[section]
    del saved["train"]["no_decay"], saved["data"]["kind"]
    assert config_changes(saved, new) == ([], [])
    new["mask"]["kind"] = "blockwise"  # not the default: the run would change meaning
    assert config_changes(saved, new)[0] == ["mask.kind '<absent>' -> 'blockwise'"]


def test_every_field_of_every_declared_section_is_a_knob():
    """Every class a section is made from (`section_config`) or checked against (`dataclass_from_config`)
    declares each field with `knob`: its meaning is written where its default is."""
    import ast
    import dataclasses
    import importlib
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    classes = set()
    for path in (root / "mmjax").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            func = getattr(node, "func", None)
            name = getattr(func, "id", None) or getattr(func, "attr", None)
            if name in ("section_config", "dataclass_from_config") and node.args and isinstance(node.args[0], ast.Name):
                module = importlib.import_module(".".join(path.relative_to(root).with_suffix("").parts))
                found = getattr(module, node.args[0].id, None)
                if dataclasses.is_dataclass(found):
                    classes.add(found)
    from mmjax.evaluate.protocols import protocol_sections

    classes |= set(protocol_sections().values())  # built from the protocol registry, not named in a call
    plain = [f"{c.__name__}.{f.name}" for c in classes for f in dataclasses.fields(c) if "doc" not in f.metadata]
    assert len(classes) >= 40 and plain == []
