"""Every mask generator that `mmjax.masking` exports is reached from some experiment config, or is
listed as a utility with the reason (`mmjax.masking.registry.UTILITIES`).

Reached means called: each exported generator is wrapped, at every place in `mmjax` that holds it, by
a spy that records the call, and then, abstractly (`jax.eval_shape`: no compile, no data), each
method is initialized and its training loss traced for

- every experiment file's defaults and each of its documented mask variants (`masking=`,
  `selection=`, `mode=`, `stage=`), shrunk as `tests/test_experiments.py` shrinks them;
- every `mask.kind` that fits the token layout of a method that reads `mask.kind`, on that method's
  first experiment file.

So a generator counts only when a config really draws it, and a kind that fits a layout in the
registry but fails in the method (a points kind without the group centers) fails here. The one
refusal allowed is a guided kind whose score map the method does not supply (SimMIM has no loss
predictor for `hard_patch`): it must fail when the method is built, with a `ConfigError`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import unittest.mock

import jax
import pytest

import mmjax.masking
from mmjax.config import ConfigError
from mmjax.masking.registry import MASKS, UTILITIES, needed_scores
from mmjax.methods.registry import method_module
from mmjax.train import checkpoint, loop
from tests import experiment_helpers as H
from tests import experiment_variants as V

MASK_VARIANT_KEYS = ("masking", "selection", "mode", "stage")


def exported_generators() -> dict[str, object]:
    """name -> function, for every callable that `mmjax.masking` exports and that is not a class or a utility."""
    names = [n for n in mmjax.masking.__all__ if n not in UTILITIES]
    found = {n: getattr(mmjax.masking, n) for n in names}
    return {n: f for n, f in found.items() if callable(f) and not inspect.isclass(f)}


@contextlib.contextmanager
def spying(generators: dict[str, object], called: set[str]):
    """Replace each generator, wherever an `mmjax` module holds it, by a wrapper that adds its name to `called`."""
    by_id = {id(f): n for n, f in generators.items()}
    with contextlib.ExitStack() as stack:
        for module in [m for name, m in sys.modules.items() if name.startswith("mmjax") and m is not None]:
            for attr, value in list(vars(module).items()):
                name = by_id.get(id(value))
                if name is None:
                    continue

                def spy(*args, _name=name, _fn=value, **kwargs):
                    called.add(_name)
                    return _fn(*args, **kwargs)

                stack.enter_context(unittest.mock.patch.object(module, attr, functools.wraps(value)(spy)))
        yield


def mask_layout(config) -> str:
    """The layout whose kinds `config.mask.kind` may name: the method module's `mask_layout(config)` or `LAYOUT`."""
    module = method_module(config.method)
    return module.mask_layout(config) if hasattr(module, "mask_layout") else module.LAYOUT


def trace_loss(config) -> None:
    """Build the method as the trainer does, then trace its init and training loss (shapes only)."""
    method = H.build(config)
    batch = H.example_batch(config, H.smallest_batch(config))
    key = jax.random.key(0)
    params = jax.eval_shape(method.init, key, batch)
    jax.eval_shape(lambda p, b, k: method.loss(p, b, k, True), params, batch, key)


def mask_cases(upstream_config_of) -> list[tuple[str, object]]:
    """(id, shrunk config) for each experiment default, mask variant and `mask.kind` sweep (see the docstring)."""
    cases, swept = [], set()
    for path in V.experiment_files():
        for case in V.variant_cases(path):
            if case.arg is not None and case.key not in MASK_VARIANT_KEYS:
                continue
            config = H.shrunk(path, case.arg)
            H.attach_upstream(config, path.stem, upstream_config_of)
            cases.append((case.id, config))
            method = config.method
            if case.arg is None and "mask" in config and (method, layout := mask_layout(config)) not in swept:
                swept.add((method, layout))
                for kind in MASKS.names(layout):
                    variant = H.shrunk(path)
                    variant.mask.kind = kind
                    if "gridjepa" in variant:  # grid I-JEPA reads mask.kind with mask targets
                        variant.gridjepa.targets = "mask"
                    cases.append((f"{case.id}:mask.kind={kind}", variant))
    return cases


@pytest.fixture(scope="module")
def reached(tmp_path_factory) -> dict[str, tuple[str, set[str] | None]]:
    """case id -> (its method, the generators its traced loss called; None: the method refused the kind)."""

    @functools.cache
    def upstream_config_of(name: str, arg: str | None) -> str:
        """A workdir holding only the `config.json` of the shrunk upstream run: building reads no more."""
        workdir = str(tmp_path_factory.mktemp(f"upstream-{name}"))
        checkpoint.write_config(workdir, loop.config_as_dict(H.shrunk(V.EXPERIMENTS / f"{name}.py", arg)))
        return workdir

    generators = exported_generators()
    out = {}
    for case_id, config in mask_cases(upstream_config_of):
        called: set[str] = set()
        with spying(generators, called):
            try:
                trace_loss(config)
            except ConfigError as err:
                if ":mask.kind=" not in case_id or "score map" not in str(err):
                    raise
                called = None
        out[case_id] = (config.method, called)
    return out


def test_every_exported_generator_is_reached_or_a_utility(reached):
    generators = set(exported_generators())
    reached_any = set().union(*(called for _, called in reached.values() if called is not None))
    missing = generators - reached_any
    assert not missing, f"exported mask generators no config reaches, and not listed as utilities: {sorted(missing)}"
    exported = set(mmjax.masking.__all__)
    assert not (stale := set(UTILITIES) - exported), f"stale utility entries: {stale}"
    assert all(UTILITIES.values())


def test_every_method_that_reads_mask_kind_reaches_every_fitting_kind(reached):
    """Each registered kind is swept (and traced) on every method whose layout it fits."""
    swept = {(method, c.split(":mask.kind=")[1]) for c, (method, _) in reached.items() if ":mask.kind=" in c}
    defaults = {(method, c) for c, (method, _) in reached.items() if c.endswith(":default")}
    readers = {"mae", "simmim", "videomae", "patchtst", "pointmae"}
    assert readers <= {m for m, _ in defaults}
    for method in readers:
        layout = method_module(method).LAYOUT
        assert {kind for m, kind in swept if m == method} == set(MASKS.names(layout)), method
    refused = {c.split(":mask.kind=")[1] for c, (_, called) in reached.items() if called is None}
    assert all(needed_scores(MASKS.choose(kind)) for kind in refused), refused
    assert any(c.endswith(":mask.kind=hard_patch") and called for c, (_, called) in reached.items())


def test_defaults_draw_the_papers_generators(reached):
    """Each method's bundled experiment draws its paper's mask."""
    want = {
        "mae_mnist:default": "random_mask",
        "simmim_mnist:default": "simmim_mask",
        "beit_mnist:default": "blockwise_mask",
        "jepa_mnist:default": "multiblock_masks",
        "videomae_moving_digits:default": "tube_mask",
        "patchtst_series:default": "variate_patch_mask",
        "mlm_pydoc:default": "bert_corruption",
        "remasker_wine:default": "remasker_masks",
        "maskgit_digits:default": "ratio_mask",
        "audiomae_synth:default": "curriculum_mask",
        "ajepa_synth:default": "time_frequency_curriculum_mask",
        "vjepa_moving_digits:default": "multiblock_masks",
        "vjepa_moving_digits:masking=tube": "tube_mask",
        "mlm_pydoc:selection=span": "span_mask",
    }
    for case_id, generator in want.items():
        called = reached[case_id][1]
        assert generator in called, (case_id, sorted(called))
