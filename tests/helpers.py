"""Shared test utilities."""

import pathlib
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import optax

from mmjax import config as mmjax_config
from mmjax.evaluate.sampling import sample_images
from mmjax.train import load_trained

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_experiment(name: str, arg: str | None = None) -> ml_collections.ConfigDict:
    """`get_config(arg)` of `experiments/<name>.py`."""
    return mmjax_config.load_experiment(ROOT / "experiments" / f"{name}.py", arg)


def descend(loss: Callable[[Any], jax.Array], params: Any, steps: int, lr: float = 3e-3) -> list[float]:
    """The losses of `steps` jitted Adam steps on `loss(params) -> scalar`, the first before any update."""
    opt = optax.adam(lr)

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(params, updates), state, value

    state, losses = opt.init(params), []
    for _ in range(steps):
        params, state, value = step(params, state)
        losses.append(float(value))
    return losses


def sample_workdir(workdir: str, num: int, class_id: int | None = None) -> str:
    """What `python -m mmjax sample --workdir W` does: load the run, write `W/samples[_classC].png`."""
    config, method, params = load_trained(workdir)
    return sample_images(config, method, params, num, class_id, out=workdir)
