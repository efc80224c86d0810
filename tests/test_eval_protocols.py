"""`eval.protocols` names the end-of-run evaluations; `()` is the method's defaults; a wrong name fails in one line."""

import ml_collections
import pytest

from mmjax.config import ConfigError
from mmjax.evaluate.protocols import DEFAULT_PROTOCOLS, IMAGE_PROTOCOLS, available_protocols, protocols_for
from mmjax.methods import available_methods, registry


def config(method, protocols=()):
    return ml_collections.ConfigDict({"method": method, "eval": {"protocols": protocols}})


def test_every_method_has_default_protocols_that_are_registered():
    # The library's methods (other test files register methods of their own in the same process).
    library = {m for m in available_methods() if registry.method_module(m).__name__.startswith("mmjax.")}
    assert library <= set(DEFAULT_PROTOCOLS) and len(library) >= 13
    for names in DEFAULT_PROTOCOLS.values():
        assert set(names) <= set(available_protocols())


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
