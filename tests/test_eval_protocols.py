"""`eval.protocols` names the end-of-run evaluations; `()` is the method's defaults; a wrong name fails in one line."""

import ml_collections
import pytest

from mmjax.config import ConfigError
from mmjax.evaluate.protocols import (
    IMAGE_PROTOCOLS,
    applicable_protocols,
    available_protocols,
    protocols_for,
)
from mmjax.methods import available_methods, registry
from mmjax.train import build_method
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


def test_empty_means_the_defaults_and_names_are_kept_in_order():
    assert protocols_for(config("mae")) == IMAGE_PROTOCOLS
    assert protocols_for(config("mlm")) == ("text_mlm",)
    assert protocols_for(config("mae", ("knn", "linear_probe"))) == ("knn", "linear_probe")
    old = ml_collections.ConfigDict({"method": "remasker", "eval": {"probe": True}})  # saved before the field existed
    assert protocols_for(old) == ("tables_imputation",)


def test_an_unknown_protocol_is_named_with_the_registered_ones():
    with pytest.raises(ConfigError, match=r"eval.protocols=\('knnn',\): 'knnn' is not an evaluation protocol") as err:
        protocols_for(config("mae", ("knnn",)))
    assert "\n" not in str(err.value) and "linear_probe" in str(err.value)
    with pytest.raises(ConfigError, match="eval.protocols='knn': expected a tuple"):
        protocols_for(config("mae", "knn"))


def test_only_the_protocols_that_apply_are_announced_and_run():
    # Before: MAE's evaluation header listed a `tokenizer` step that MAE, having no `tokenize`, skipped.
    mae = load_experiment("mae_digits")
    method = build_method(mae)
    assert applicable_protocols(mae, method) == ("linear_probe", "reconstruction_figure")
    mae.eval.update(probe=False, figure=False)
    assert applicable_protocols(mae, method) == ()
    vq = load_experiment("vq_mnist")
    assert "tokenizer" in applicable_protocols(vq, build_method(vq))
