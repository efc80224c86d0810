"""Shared test utilities."""

import importlib.util
import pathlib

import ml_collections

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_experiment(name: str, arg: str | None = None) -> ml_collections.ConfigDict:
    """`get_config(arg)` of `experiments/<name>.py`."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)
