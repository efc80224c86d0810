"""Shared test utilities."""

import pathlib

import ml_collections

from mmjax import config as mmjax_config

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_experiment(name: str, arg: str | None = None) -> ml_collections.ConfigDict:
    """`get_config(arg)` of `experiments/<name>.py`."""
    return mmjax_config.load_experiment(ROOT / "experiments" / f"{name}.py", arg)
