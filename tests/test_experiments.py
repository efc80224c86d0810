"""Every experiment file resolves, validates, builds and takes a gradient, so the paper-scale recipes cannot rot.

For each file in `experiments/` (found by glob) and each variant its docstring names:

- the docstring's "Variants" text names exactly the keys its `parse_arg` accepts
  (`test_variants_documented`);
- the config resolves, passes the trainer's knob checks, and shrinks automatically to a tiny size
  (`tests/experiment_helpers.py`) that changes no structural choice and still validates
  (`test_resolves_and_shrinks`);
- every file's defaults, and each variant that makes a structural choice no case before it made
  (a mask, a mode, a loss, a quantizer: `_build_cases`), build as the trainer builds them: the
  pre-compile checks pass (method, mesh, batch split, shardings, optimizer), the method initializes
  on its data kind's example batch, and one `jax.value_and_grad(method.loss)` with `train=True` is
  finite, with a gradient that is finite and not zero on every trainable leaf
  (`test_builds_and_computes_a_gradient`).

Methods that take a part of another run (BEiT's tokenizer, distillation's teacher, MaskGIT's
tokenizer) get one: a finished tiny run of the upstream experiment, shrunk the same way, written
once per module (`upstream_workdir`) and loaded as the trainer loads it. No data files are read:
batches have the data kind's `batch_spec` shapes, so the ImageNet, Kinetics, AudioSet and ShapeNet
recipes run here too.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import numpy as np
import pytest

from mmjax.train.validate import check_runtime_config
from tests import experiment_helpers as H
from tests import experiment_variants as V

pytestmark = pytest.mark.promise  # every experiment file builds: the README promises it

FILES = V.experiment_files()
CASES = [case for path in FILES for case in V.variant_cases(path)]


def _build_cases() -> list[V.Case]:
    """Which cases build and take a gradient: every file's defaults, and a variant wherever it makes a
    structural choice (`H.build_signature`) that no case built before makes for the same method.

    So `audiomae_audioset:masking=time_frequency` builds and `audiomae_synth:masking=time_frequency`
    (the same mask of the same method) only resolves; `steps=`, `path=`, `size=` and `rate=`
    variants only resolve.
    """
    signatures = {}
    for case in CASES:
        try:
            signatures[case] = H.build_signature(H.shrunk(case.path, case.arg))
        except Exception:  # noqa: BLE001  (it fails again, with its message, in test_resolves_and_shrinks)
            signatures[case] = None
    chosen, covered = [], set()

    def choices(signature):
        return {(signature.get("method"), key, repr(value)) for key, value in signature.items()}

    for case in [c for c in CASES if c.arg is None] + [c for c in CASES if c.arg is not None]:
        signature = signatures[case]
        if signature is None or case.arg is None or not choices(signature) <= covered:
            chosen.append(case)
            covered |= choices(signature or {})
    return chosen


BUILD_CASES = _build_cases()


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_variants_documented(path: pathlib.Path):
    accepted = V.accepted_variants(path)
    documented = V.documented_variants(V.module_docstring(path))
    assert set(documented) == set(accepted), (
        f"{path.name}: the docstring's Variants name {sorted(documented)}, get_config's parse_arg accepts "
        f"{sorted(accepted)}; undocumented: {sorted(set(accepted) - set(documented))}, "
        f"not accepted: {sorted(set(documented) - set(accepted))}"
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_resolves_and_shrinks(case: V.Case):
    config = H.resolved(case.path, case.arg)
    check_runtime_config(config)
    if case.changes_default:
        default = H.resolved(case.path)
        assert H.flat(config) != H.flat(default), f"{case.id} resolves to the default config"
    small = H.shrunk(case.path, case.arg)
    check_runtime_config(small)
    assert small.method == config.method
    assert not H.structural_changes(config, small), H.structural_changes(config, small)
    assert small.train.steps == 1 and small.train.batch_size == H.smallest_batch(small)


@pytest.fixture(scope="module")
def upstream_workdir(tmp_path_factory):
    """`(experiment, variant) -> workdir` of a finished tiny run of it, made on first use, kept for the module."""

    @functools.cache
    def make(name: str, arg: str | None) -> str:
        workdir = str(tmp_path_factory.mktemp(f"upstream-{name}"))
        config = H.shrunk(V.EXPERIMENTS / f"{name}.py", arg)
        with config.unlocked():
            config.train.update(steps=2, checkpoint_every=2, log_every=2)
        H.write_finished_run(config, workdir, step=2)
        return workdir

    return make


@pytest.mark.parametrize("case", BUILD_CASES, ids=[c.id for c in BUILD_CASES])
def test_builds_and_computes_a_gradient(case: V.Case, upstream_workdir):
    config = H.shrunk(case.path, case.arg)
    H.attach_upstream(config, case.path.stem, upstream_workdir)
    method = H.trainer_checks(config)
    batch = H.example_batch(config, 2)
    init_key, step_key = jax.random.split(jax.random.key(0))
    params = H.load_frozen(method, H.init_params(method, init_key, batch))
    H.optimizer_check(config, method, params)
    value, grads = H.value_and_grad(method, params, batch, step_key)
    assert np.isfinite(float(value)), f"{case.id}: loss {float(value)}"
    problems = H.gradient_problems(method, params, grads)
    assert not problems, f"{case.id}: {problems}"
