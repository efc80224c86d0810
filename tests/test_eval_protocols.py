"""`eval.protocols` is the one switch of the evaluations; a protocol's settings are its own section, `eval.<name>`."""

import dataclasses

import jax
import ml_collections
import numpy as np
import pytest

from mmjax.config import ConfigError
from mmjax.data.transforms import normalize_images
from mmjax.evaluate.images import few_per_class, image_features, lowshot_table, random_image_params
from mmjax.evaluate.linear_probe import linear_probe
from mmjax.evaluate.protocols import (
    applicable_protocols,
    available_protocols,
    check_eval_section,
    protocol_sections,
    requested_protocols,
    settings,
)
from mmjax.evaluate.sections import EvalSection, ProbeSection, upgrade_saved_eval
from mmjax.methods import available_methods, registry
from mmjax.train import build_method
from mmjax.train.defaults import training_sections
from mmjax.train.validate import check_runtime_config
from tests.helpers import load_experiment


def config(method, protocols=()):
    return ml_collections.ConfigDict({"method": method, "eval": {"protocols": protocols}})


def test_every_method_declares_default_protocols_that_are_registered():
    # The library's methods (other test files register methods of their own in the same process).
    library = {m for m in available_methods() if registry.method_module(m).__name__.startswith("mmjax.")}
    assert len(library) >= 13
    for name in library:
        assert set(registry.method_protocols(name)) <= set(available_protocols()), name
    assert registry.method_protocols("pointmae") == ("points_probe",)  # declared where the method is registered


def test_a_run_starts_with_its_methods_protocols_and_names_are_kept_in_order():
    assert training_sections(ml_collections.ConfigDict({"method": "mae"})).eval.protocols == (
        "linear_probe",
        "reconstruction_figure",
    )
    assert training_sections(ml_collections.ConfigDict({"method": "mlm"})).eval.protocols == ("text_mlm",)
    assert requested_protocols(config("mae", ("knn", "linear_probe"))) == ("knn", "linear_probe")
    assert requested_protocols(config("mae", ())) == ()  # () runs none


def test_an_unknown_protocol_is_named_with_the_registered_ones():
    with pytest.raises(ConfigError, match=r"eval.protocols=\('knnn',\): 'knnn' is not an evaluation protocol") as err:
        requested_protocols(config("mae", ("knnn",)))
    assert "\n" not in str(err.value) and "linear_probe" in str(err.value)
    with pytest.raises(ConfigError, match="eval.protocols='knn': expected a tuple"):
        requested_protocols(config("mae", "knn"))


def test_each_protocol_with_settings_has_its_own_section_of_knobs():
    built = training_sections(ml_collections.ConfigDict({"method": "mae"}))
    sections = protocol_sections()
    assert {"linear_probe", "knn", "kind_probe", "points_probe", "series", "reconstruction_figure"} <= set(sections)
    own = {f.name for f in dataclasses.fields(EvalSection)}
    assert set(built.eval) == own | set(sections)
    for name, declaration in sections.items():
        defaults = {f.name: f.default for f in dataclasses.fields(declaration)}
        assert built.eval[name].to_dict() == defaults, name
    assert settings(built, "linear_probe") == ProbeSection()
    built.eval.knn.k = 0
    with pytest.raises(ConfigError, match=r"^eval.knn.k=0: expected an integer >= 1$"):
        check_runtime_config(built)


def test_a_section_missing_from_an_older_config_gets_its_defaults():
    built = training_sections(ml_collections.ConfigDict({"method": "mae"}))
    with built.eval.unlocked():
        del built.eval["knn"]
        del built.eval["every_steps"]
    checked = check_eval_section(built.eval)
    assert checked.every_steps == 0 and built.eval.knn.k == 20


@pytest.mark.parametrize(
    ("old", "told"),
    [
        ("probe", "moved: list linear_probe / kind_probe in eval.protocols"),
        ("probe_steps", "moved: eval.<protocol>.steps"),
        ("figure_examples", "moved: eval.reconstruction_figure.examples"),
    ],
)
def test_a_flat_eval_knob_of_before_says_where_it_went(old, told):
    built = training_sections(ml_collections.ConfigDict({"method": "mae"}))
    with built.eval.unlocked():
        built.eval[old] = 1
    with pytest.raises(ConfigError, match=rf"^unknown field eval.{old} \({told}") as err:
        check_runtime_config(built)
    assert "\n" not in str(err.value)


def test_only_the_protocols_that_apply_are_run():
    # Before: MAE's evaluation header listed a `tokenizer` step that MAE, having no `tokenize`, skipped.
    mae = load_experiment("mae_digits")
    method = build_method(mae)
    assert applicable_protocols(mae, method) == ("linear_probe", "reconstruction_figure")
    mae.eval.protocols = ("linear_probe", "tokenizer")
    assert applicable_protocols(mae, method) == ("linear_probe",)
    mae.eval.protocols = ()
    assert applicable_protocols(mae, method) == ()
    vq = load_experiment("vq_mnist")
    assert "tokenizer" in applicable_protocols(vq, build_method(vq))


def test_a_config_saved_with_the_flat_eval_knobs_evaluates_what_it_did():
    flat = {"protocols": [], "probe": False, "figure": True, "probe_steps": 300, "probe_l2": 0.0, "probe_pool": "cls"}
    flat.update(probe_raw_input=False, figure_examples=3, stride=8, horizon_patches=1, batch_size=64)
    upgraded = upgrade_saved_eval({"method": "mae", "eval": flat})
    ev = upgraded["eval"]
    assert ev["protocols"] == ("reconstruction_figure",)  # mae's own, less the probe that was off
    assert ev["linear_probe"] == ev["points_probe"] == {"steps": 300, "l2": 0.0, "pool": "cls"}
    assert ev["kind_probe"] == {"steps": 300, "l2": 0.0, "pool": "cls", "raw_input": False}
    assert ev["series"] == {"steps": 300, "l2": 0.0, "pool": "cls", "stride": 8, "horizon_patches": 1}
    assert ev["knn"] == {"pool": "cls"} and ev["reconstruction_figure"] == {"examples": 3} and ev["batch_size"] == 64
    checked = ml_collections.ConfigDict({"method": "mae", "eval": ev})
    check_eval_section(checked.eval)  # a valid section of today, the rest at their defaults
    assert checked.eval.knn.k == 20
    named = upgrade_saved_eval({"method": "mlm", "eval": {"protocols": ["knn", "linear_probe"], "probe": False}})
    assert named["eval"]["protocols"] == ("knn",)
    today = training_sections(ml_collections.ConfigDict({"method": "mae"})).to_dict()
    assert upgrade_saved_eval(today) is today


def test_few_per_class_takes_that_many_of_each_class():
    labels = np.array([0, 1, 1, 2, 2, 2, 0, 1, 2, 0])
    picked = few_per_class(labels, 2, np.random.default_rng(0))
    assert np.bincount(labels[picked]).tolist() == [2, 2, 2] and (np.diff(picked) > 0).all()
    assert np.bincount(labels[few_per_class(labels, 5, np.random.default_rng(0))]).tolist() == [3, 3, 4]


def test_the_lowshot_probe_fits_on_the_drawn_examples_only():
    config = load_experiment("mae_digits")
    config.model.update(width=16, depth=1, heads=2, mlp_dim=32)
    config.eval.lowshot_probe.update(labels_per_class=3, draws=1, steps=50)
    method = build_method(config)
    params, random_params = (random_image_params(config, method) for _ in range(2))
    lowshot = settings(config, "lowshot_probe")
    rows = lowshot_table(config, method, params, random_params, lowshot)
    assert [(r.protocol, r.name, r.baseline) for r in rows] == [
        ("linear probe, 3 labels per class", "mae encoder", False),
        ("linear probe, 3 labels per class", "random encoder", True),
        ("linear probe, 3 labels per class", "raw pixels", True),
    ]

    @jax.jit
    def pixels(_, images):
        return normalize_images(images, config.data.mean, config.data.std).reshape(images.shape[0], -1)

    (train, train_y), (test, test_y) = (image_features(config, {"raw": (pixels, None)}, s) for s in ("train", "test"))
    few = few_per_class(train_y, 3, np.random.default_rng(config.seed))
    assert len(few) == 30
    expected = linear_probe(train["raw"][few], train_y[few], test["raw"], test_y, steps=50, l2=lowshot.l2)
    assert rows[2].value == expected
