"""The trainer's generic parts: a non-image data kind and the optional method hooks."""

import dataclasses

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from mmjax.data.kinds import DataKind, data_kind, register_data_kind
from mmjax.methods.protocol import STATE_INPUTS
from mmjax.methods.registry import register_method
from mmjax.train import train
from mmjax.train.defaults import training_sections

DIM = 6
TRUE_W = np.linspace(-1.0, 1.0, DIM).astype(np.float32)


def vector_dataset(data_config, global_batch_size, seed, process_index, process_count):
    x = np.random.default_rng(0).normal(size=(256, DIM)).astype(np.float32)
    records = [{"x": row, "y": np.float32(row @ (TRUE_W + 3.0))} for row in x]  # frozen part is 3
    ds = grain.MapDataset.source(records)[process_index::process_count].shuffle(seed=seed).repeat(None)
    return ds.batch(global_batch_size // process_count, drop_remainder=True).to_iter_dataset()


def vector_spec(data_config, batch_size):
    return {
        "x": jax.ShapeDtypeStruct((batch_size, DIM), jnp.float32),
        "y": jax.ShapeDtypeStruct((batch_size,), jnp.float32),
    }


register_data_kind(DataKind("test_vectors", vector_dataset, vector_spec, lambda b, c: {**b, "x": b["x"] * c.scale}))


@dataclasses.dataclass(frozen=True)
class Regression:
    """`w` is learned; `frozen` is loaded once and never moves; `ema` tracks `w`; `seen` counts examples.

    Targets are `x @ (TRUE_W + 3)`, so with `frozen` at 3 the loss falls as `w` learns `TRUE_W`.
    """

    momentum: float = 0.5

    def init(self, rng, batch):
        dim = batch["x"].shape[-1]
        return {"w": jnp.zeros(dim), "frozen": jnp.zeros(dim), "ema": jnp.zeros(dim), "seen": jnp.zeros(())}

    def param_axes(self):
        return {"w": P(None), "frozen": P(None), "ema": P(None), "seen": P()}

    def trainable(self, params):
        return {"w": True, "frozen": False, "ema": False, "seen": False}

    def load_frozen(self, params, runs):  # declares no `frozen_runs`: `runs` is {}
        return {**params, "frozen": jnp.full_like(params["frozen"], 3.0)}

    def loss(self, params, batch, rng, train=True):
        pred = batch["x"] @ (params["w"] + params["frozen"])
        loss = jnp.mean((pred - batch["y"]) ** 2)
        return loss, {STATE_INPUTS: {"count": jnp.float32(batch["x"].shape[0])}}

    def after_step(self, params, state_inputs, step):
        ema = self.momentum * params["ema"] + (1 - self.momentum) * params["w"]
        return {**params, "ema": ema, "seen": params["seen"] + state_inputs["count"]}


register_method("test_regression")(lambda config: Regression())


def regression_config(steps):
    config = ml_collections.ConfigDict({"method": "test_regression"})
    config = training_sections(config)
    config.data = ml_collections.ConfigDict({"kind": "test_vectors", "scale": 1.0})
    config.train.update(steps=steps, batch_size=16, lr=0.05, warmup_steps=0, weight_decay=0.0, log_every=1)
    config.train.update(checkpoint_every=100, tensorboard=False, async_checkpoints=False)
    return config


def test_hooks_freeze_load_and_update_state(tmp_path):
    result = train(regression_config(steps=5), str(tmp_path))
    params = jax.device_get(result.state.params)
    np.testing.assert_array_equal(params["frozen"], np.full(DIM, 3.0))  # loaded, then never trained
    assert float(params["seen"]) == 5 * 16  # after_step ran once per step with the batch statistics
    assert not np.allclose(params["w"], 0.0)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0]
    assert all(STATE_INPUTS not in row for row in result.history)
    # No Adam moments are kept for frozen leaves.
    moments = [leaf.shape for leaf in jax.tree.leaves(result.state.opt_state) if getattr(leaf, "ndim", 0) == 1]
    assert len(moments) == 2  # mu and nu of `w` only


def test_ema_in_after_step_equals_the_formula(tmp_path):
    # Run 1 step, then 2 steps from scratch: the second step's EMA must be m * ema_1 + (1 - m) * w_2.
    one = jax.device_get(train(regression_config(steps=1), str(tmp_path / "a")).state.params)
    two = jax.device_get(train(regression_config(steps=2), str(tmp_path / "b")).state.params)
    np.testing.assert_allclose(one["ema"], 0.5 * one["w"], rtol=1e-6)
    np.testing.assert_allclose(two["ema"], 0.5 * one["ema"] + 0.5 * two["w"], rtol=1e-6)


def test_unknown_data_kind_is_named():
    with pytest.raises(ValueError, match="data.kind='sound'"):
        data_kind(ml_collections.ConfigDict({"kind": "sound"}))
