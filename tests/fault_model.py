"""A model for the fault tests that compiles in well under a second: `fault_linear` on `fault_vectors`.

It is fed by a real grain pipeline (`batched_stream`, so its iterator state is a position in
examples): the loop's fault handling does not depend on the model. As a process,
`python -m tests.fault_model WORKDIR STEPS [knob=value ...]` trains it on one device with the
`train.*` knobs given (a run a test can kill at any moment) and prints `done at step N`.
"""

import ast
import dataclasses
import sys

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import PartitionSpec as P

from mmjax.data import DataKind, register_data_kind
from mmjax.data.pipeline import batched_stream
from mmjax.methods import register_method
from mmjax.train.defaults import training_sections

DIM = 4


def vector_stream(data_config, global_batch_size, seed, process_index, process_count):
    x = np.random.default_rng(0).normal(size=(512, DIM)).astype(np.float32)
    records = [{"x": row, "y": np.float32(row.sum())} for row in x]
    ds = grain.MapDataset.source(records)[process_index::process_count].shuffle(seed=seed).repeat(None)
    return batched_stream(ds, global_batch_size, process_count, data_config)


def vector_spec(data_config, batch_size):
    return {
        "x": jax.ShapeDtypeStruct((batch_size, DIM), jnp.float32),
        "y": jax.ShapeDtypeStruct((batch_size,), jnp.float32),
    }


@dataclasses.dataclass(frozen=True)
class Linear:
    def init(self, rng, batch):
        return {"w": jnp.zeros(DIM), "b": jnp.zeros(())}

    def param_axes(self):
        return {"w": P(None), "b": P()}

    def loss(self, params, batch, rng, train=True):
        loss = jnp.mean((batch["x"] @ params["w"] + params["b"] - batch["y"]) ** 2)
        return loss, {}


register_data_kind(DataKind("fault_vectors", vector_stream, vector_spec))
register_method("fault_linear")(lambda config: Linear())


def tiny(steps=6, **train_knobs):
    """The linear model: batch 16, a log row per step, checkpoints every 3 steps, one device."""
    config = training_sections(ml_collections.ConfigDict({"method": "fault_linear"}))
    config.data = ml_collections.ConfigDict({"kind": "fault_vectors", "num_threads": 0})
    config.train.update(steps=steps, batch_size=16, lr=0.05, warmup_steps=0, log_every=1, checkpoint_every=3)
    config.train.update({"tensorboard": False, **train_knobs})
    config.eval.protocols = ()
    return config


def main(workdir: str, steps: str, *knobs: str) -> None:
    from mmjax.train import train  # noqa: PLC0415

    parsed = {k: ast.literal_eval(v) for k, v in (x.split("=", 1) for x in knobs)}
    restart = parsed.pop("restart", False)
    result = train(tiny(int(steps), **parsed), workdir, devices=jax.devices()[:1], restart=restart)
    print(f"done at step {result.step}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
