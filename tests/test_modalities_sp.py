"""The acceptance numbers of benchmarks/modalities_sp.py (minutes of training: slow, not in CI)."""

import importlib.util

import pytest

from tests.helpers import ROOT


@pytest.mark.slow
def test_pretrained_beats_random_and_imputation_beats_linear_interpolation():
    spec = importlib.util.spec_from_file_location("modalities_sp", ROOT / "benchmarks" / "modalities_sp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.rows()
    probes = [r for r in rows if r["metric"] == "accuracy"]
    assert len(probes) == 4
    for row in probes:
        assert row["pretrained"] > row["random"], row
    imputation = next(r for r in rows if r["task"].startswith("imputation"))
    assert imputation["baseline"].startswith("linear interpolation")
    assert imputation["pretrained"] < imputation["baseline_value"], imputation
