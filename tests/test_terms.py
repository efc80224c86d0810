"""Add-on terms (`mmjax.methods.terms`): a term defined here, in a test, joins MAE with no edit of `mmjax/`.

It gets a config section of its own, its own params, its loss added to the paper's loss, and it
trains the trainer's way; off (its default), the method is MAE exactly.
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.config import ConfigError, knob
from mmjax.methods import build_method, mae, terms
from mmjax.methods.terms import Step, Term, register_term, registered_terms
from mmjax.train.defaults import training_sections
from tests.feature_helpers import run_steps


@dataclasses.dataclass(frozen=True)
class PullOptions:
    """`pull`: a toy term pulling its own scalar toward `goal`."""

    weight: float = knob(0.0, "weight of the toy term (0 = off)", low=0)
    goal: float = knob(1.0, "where the scalar is pulled")


@dataclasses.dataclass(frozen=True)
class Pull(Term):
    section = "pull"
    options = PullOptions

    opts: PullOptions

    @classmethod
    def build(cls, options: PullOptions, base) -> Pull | None:
        if options.weight and base.mask_part.name != "random":
            raise ConfigError(f"pull.weight={options.weight}: expected mask.kind='random'")
        return cls(options) if options.weight else None

    def init(self, rng, step: Step):
        return {"scalar": jnp.zeros((), jnp.float32)}

    def loss(self, step: Step):
        scalar = step.params[self.section]["scalar"]
        pull = (scalar - self.opts.goal) ** 2
        return self.opts.weight * pull, {"pull": pull, "encoded_mean": jnp.mean(step.out["encoded"])}


@pytest.fixture
def registered():
    register_term("mae")(Pull)
    assert registered_terms("mae")["pull"] is Pull
    yield
    del terms._TERMS["mae"]["pull"]  # other tests see MAE's sections without the toy one


def tiny_config(weight: float):
    config = training_sections(mae.default_config())
    config.model.update(size=None, image_size=8, patch_size=2, channels=1, width=16, depth=1, heads=2, mlp_dim=32)
    config.decoder.update(width=16, depth=1, heads=2, mlp_dim=32)
    config.pull.weight = weight
    config.train.update(steps=20, lr=0.05, warmup_steps=1)
    return config


def test_a_term_from_a_test_adds_its_section_params_and_loss(registered):
    images = jax.random.normal(jax.random.key(0), (4, 8, 8, 1))
    batch = {"image": images}
    plain, with_pull = build_method(tiny_config(0.0)), build_method(tiny_config(0.5))
    assert plain.terms == () and [t.section for t in with_pull.terms] == ["pull"]
    params = with_pull.init(jax.random.key(1), batch)
    base = plain.init(jax.random.key(1), batch)
    assert sorted(params) == ["decoder", "encoder", "pull"] and sorted(base) == ["decoder", "encoder"]
    for a, b in zip(jax.tree.leaves({k: params[k] for k in base}), jax.tree.leaves(base), strict=True):
        np.testing.assert_array_equal(a, b)  # the term leaves MAE's own init alone
    loss, metrics = with_pull.loss(params, batch, jax.random.key(2))
    want, _ = plain.loss(base, batch, jax.random.key(2))
    np.testing.assert_allclose(float(metrics["reconstruction_loss"]), float(want), rtol=1e-6)
    np.testing.assert_allclose(float(loss), float(want) + 0.5 * 1.0, rtol=1e-6)
    assert float(metrics["pull"]) == 1.0 and np.isfinite(float(metrics["encoded_mean"]))
    axes = with_pull.param_axes()
    assert jax.tree.structure(axes, is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec)) == jax.tree.structure(
        params
    )


def test_the_term_trains_with_the_method_and_checks_its_own_section(registered):
    config = tiny_config(0.5)
    method = build_method(config)
    images = jax.random.normal(jax.random.key(0), (4, 8, 8, 1))
    params = method.init(jax.random.key(1), {"image": images})
    *_, final, losses = run_steps(method, config.train, params, images, 20)
    assert 0.2 < float(final["pull"]["scalar"]) < 1.0  # pulled from 0 toward the goal by the optimizer
    config.mask.kind = "blockwise"
    with pytest.raises(ConfigError, match=r"pull.weight=0.5: expected mask.kind='random'"):
        build_method(config)
    config.pull.wieght = 1.0
    with pytest.raises(ConfigError, match="pull.wieght"):
        build_method(config)


def test_the_base_method_never_names_its_terms():
    # MAE's code (docstrings aside) reads no term's section or knob: terms join through the hooks only.
    source = pathlib.Path(mae.__file__).read_text()
    assert len(source.splitlines()) < 250
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node) is not None
    }
    words = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.update(node.value.replace(".", " ").split())
        elif isinstance(node, ast.Attribute):
            words.add(node.attr)
        elif isinstance(node, ast.Name):
            words.add(node.id)
    sections = set(registered_terms("mae"))
    assert sections >= {"hpm", "teacher", "dmjd", "budget", "supervised", "localmim"}
    knobs = {f.name for cls in registered_terms("mae").values() for f in dataclasses.fields(cls.options)}
    assert not words & (sections | knobs), words & (sections | knobs)
