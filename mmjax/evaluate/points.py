"""Point-cloud evaluation: a linear probe on the class of each cloud, trained vs random encoder."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.data.shapes import point_clouds
from mmjax.evaluate.linear_probe import linear_probe
from mmjax.evaluate.report import announce
from mmjax.evaluate.sections import ProbeSection
from mmjax.methods.protocol import EvalResult


def cloud_probe(method: Any, params: dict[str, Any], data_config: Any, probe: ProbeSection) -> dict:
    """`{name: test accuracy}` of a linear probe on each parameter set's pooled features (`params`: name -> params)."""
    train_x, train_y = point_clouds(data_config, "train")
    test_x, test_y = point_clouds(data_config, "test")
    fn = jax.jit(lambda p, x: method.features(p, x, pool=probe.pool))

    def feats(p, x, batch=256):
        return np.concatenate([np.asarray(fn(p, jnp.asarray(x[i : i + batch]))) for i in range(0, len(x), batch)])

    return {
        k: linear_probe(feats(p, train_x), train_y, feats(p, test_x), test_y, steps=probe.steps, l2=probe.l2)
        for k, p in params.items()
    }


def evaluate_points(config: Any, method: Any, params: Any, probe: ProbeSection) -> list[EvalResult]:
    """The end-of-run report of a Point-MAE run: `linear probe` `accuracy` on the shape class (test split)
    for the trained encoder (`<config.method> encoder`) and the same encoder at a random initialization
    (`random encoder`, a baseline)."""
    example = {"points": jnp.zeros((1, config.data.num_points, 3), jnp.float32)}
    trained = f"{config.method} encoder"
    sets = {trained: params, "random encoder": jax.jit(method.init)(jax.random.key(config.seed + 12345), example)}
    announce(f"linear probe on the shape class ({probe.pool} features, {probe.steps} steps)")
    row = cloud_probe(method, sets, config.data, probe)
    return [EvalResult("linear probe", name, "accuracy", acc, baseline=name != trained) for name, acc in row.items()]
