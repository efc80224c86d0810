"""The training loop, top to bottom: config -> mesh -> input -> state -> step -> checkpoints -> loop.

The loop knows only the method protocol (`init`, `loss`, `param_axes`); it never names a
method. It runs unchanged on one CPU, simulated CPU devices, GPUs and TPU pods.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from mmjax.data.kinds import data_kind
from mmjax.methods.protocol import STATE_INPUTS
from mmjax.methods.registry import build_method
from mmjax.train import checkpoint, distributed
from mmjax.train.mesh import batch_sharding, global_batch, make_mesh, mesh_shape, param_shardings, replicated
from mmjax.train.metrics import MetricWriter
from mmjax.train.optimizer import make_optimizer
from mmjax.train.preemption import Preempted, PreemptionWatcher
from mmjax.train.state import TrainState


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or Inf; nothing after the last good checkpoint was saved."""


@dataclasses.dataclass
class TrainResult:
    step: int
    state: TrainState
    history: list[dict[str, float]]
    method: Any
    mesh: Any


def config_as_dict(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """JSON-safe copy of the resolved config (tuples become lists)."""
    return json.loads(json.dumps(config.to_dict(), default=list))


def create_state(config: ml_collections.ConfigDict, method: Any, mesh: Any):
    """Abstract-first state creation: every array is born on its shard.

    Returns `(init_fn, state_shardings, optimizer, schedule)`; `init_fn()` makes a fresh
    state (with the method's `load_frozen` applied, when it has one).
    """
    example = data_kind(config.data).example_batch(config.data)
    abstract_params = jax.eval_shape(method.init, jax.random.key(0), example)
    p_shardings = param_shardings(method.param_axes(), mesh, config.sharding.rules)
    trainable = method.trainable(abstract_params) if hasattr(method, "trainable") else None
    optimizer, schedule = make_optimizer(config.train, abstract_params, trainable)
    abstract_opt = jax.eval_shape(optimizer.init, abstract_params)
    opt_shardings = optax.tree_map_params(  # moments shard like their params; frozen leaves have none
        optimizer,
        lambda leaf, s: leaf if isinstance(leaf, optax.MaskedNode) else s,
        abstract_opt,
        p_shardings,
        transform_non_params=lambda _: replicated(mesh),
        is_leaf=lambda x: isinstance(x, optax.MaskedNode),
    )
    shardings = TrainState(step=replicated(mesh), params=p_shardings, opt_state=opt_shardings, rng=replicated(mesh))
    init_key, run_key = jax.random.split(jax.random.key(config.seed))

    def init() -> TrainState:
        params = method.init(init_key, example)
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=optimizer.init(params),
            rng=jax.random.key_data(run_key),
        )

    jitted_init = jax.jit(init, out_shardings=shardings)
    if not hasattr(method, "load_frozen"):
        return jitted_init, shardings, optimizer, schedule

    def init_with_frozen() -> TrainState:
        state = jitted_init()
        return state.replace(params=jax.device_put(method.load_frozen(state.params), p_shardings))

    init_with_frozen.plain_init = jitted_init  # `load_frozen` is host-side: never traced for shapes
    return init_with_frozen, shardings, optimizer, schedule


def abstract_state(init_state: Any, shardings: TrainState) -> TrainState:
    """Shapes, dtypes and shardings of the state `init_state()` would make, allocating nothing."""
    shapes = jax.eval_shape(getattr(init_state, "plain_init", init_state))  # same shapes, no `load_frozen`
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), shapes, shardings)


def batch_spec(config: ml_collections.ConfigDict, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    """Shapes and dtypes of a host batch of `config.data`'s kind."""
    return data_kind(config.data).batch_spec(config.data, batch_size)


def make_train_step(config, method, optimizer, schedule, state_shardings, mesh):
    """One jitted update with donated state: grads, clip + AdamW, the method's `after_step`, metrics."""
    kind = data_kind(config.data)
    spec = kind.batch_spec(config.data, config.train.batch_size)
    batch_shardings = {name: batch_sharding(mesh, len(s.shape)) for name, s in spec.items()}
    after_step = getattr(method, "after_step", None)

    def step(state: TrainState, batch: dict[str, jax.Array]) -> tuple[TrainState, dict[str, jax.Array]]:
        batch = kind.prepare(batch, config.data)
        grad_fn = jax.value_and_grad(method.loss, has_aux=True)
        (loss, metrics), grads = grad_fn(state.params, batch, state.step_key(), True)
        state_inputs = metrics.pop(STATE_INPUTS, None)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if after_step is not None:
            params = after_step(params, state_inputs, state.step)
        metrics = {**metrics, "loss": loss, "grad_norm": optax.tree.norm(grads), "lr": schedule(state.step)}
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return jax.jit(
        step,
        in_shardings=(state_shardings, batch_shardings),
        out_shardings=(state_shardings, replicated(mesh)),
        donate_argnums=(0,),
    )


def check_finite(step: int, metrics: dict[str, float], manager: Any) -> None:
    loss = metrics["loss"]
    if not math.isfinite(loss):
        manager.wait_until_finished()
        raise NonFiniteLossError(
            f"loss is {loss} at step {step}; stopping. The last good checkpoint is step "
            f"{manager.latest_step()} and nothing after it was saved."
        )


def train(
    config: ml_collections.ConfigDict,
    workdir: str,
    *,
    data_iterator: Iterator | None = None,
    devices: list[jax.Device] | None = None,
) -> TrainResult:
    """Train `config.method` per `config.train`, resuming from `workdir` when it has checkpoints.

    Args:
      config: a resolved experiment config (`experiments/*.py`).
      workdir: checkpoints, `metrics.jsonl`, `config.json` and figures go here.
      data_iterator: replaces the configured grain pipeline (its state is then not
        checkpointed); yields host batches shaped like `batch_spec(config, b)`, for
        images `{"image": uint8 [b, H, W, C], "label": [b]}`.
      devices: the devices of the mesh (default: all).
    """
    tc = config.train
    # --- Processes: one per host when `config.distributed` or MMJAX_* says so -----------
    distributed.initialize(config.get("distributed"))
    is_chief = jax.process_index() == 0

    # --- Method and mesh --------------------------------------------------------------
    method = build_method(config)
    mesh = make_mesh(config.mesh.to_dict(), devices)
    if is_chief:
        checkpoint.write_config(workdir, config_as_dict(config))

    # --- Input: each process reads its own slice; the iterator state is checkpointed ----
    if data_iterator is None:
        dataset = data_kind(config.data).train_dataset
        data = iter(dataset(config.data, tc.batch_size, config.seed, jax.process_index(), jax.process_count()))
    else:
        data = data_iterator

    # --- State and update step --------------------------------------------------------
    init_state, state_shardings, optimizer, schedule = create_state(config, method, mesh)
    train_step = make_train_step(config, method, optimizer, schedule, state_shardings, mesh)

    # --- Checkpoints: resume if the workdir has one ------------------------------------
    manager = checkpoint.checkpoint_manager(workdir, tc.keep_checkpoints, tc.get("async_checkpoints", True))
    latest = distributed.agree_on_int(-1 if manager.latest_step() is None else manager.latest_step())
    latest = None if latest < 0 else latest  # every process resumes from process 0's step
    if latest is not None:
        state = checkpoint.restore(
            manager, latest, abstract_state(init_state, state_shardings), data if data_iterator is None else None
        )
        if is_chief:
            print(f"resumed from step {latest} in {workdir}", flush=True)
    else:
        state = init_state()
    start = int(jax.device_get(state.step))

    # --- Loop ---------------------------------------------------------------------------
    writer = MetricWriter(workdir, tc.steps, tensorboard=tc.get("tensorboard", True))
    history: list[dict[str, float]] = []
    pending = None  # (step, device metrics) not yet checked on the host
    tick, ticked_step = time.perf_counter(), start
    watcher = PreemptionWatcher()
    try:
        watcher.__enter__()
        for step in range(start + 1, tc.steps + 1):
            host_batch = next(data)
            batch = global_batch(host_batch, mesh)  # the step's one explicit host -> device copy
            with jax.transfer_guard("disallow"):
                state, metrics = train_step(state, batch)
            if pending is not None:  # check the previous step while this one runs
                check_finite(pending[0], jax.device_get(pending[1]), manager)
            pending = (step, metrics)
            preempted = watcher.should_stop()  # every process stops after the same step
            is_log = step % tc.log_every == 0 or step == tc.steps
            is_save = step % tc.checkpoint_every == 0 or step == tc.steps or preempted
            if is_log or is_save:
                values = jax.device_get(metrics)
                check_finite(step, values, manager)
                pending = None
                now = time.perf_counter()
                seconds = (now - tick) / max(1, step - ticked_step)
                row = {k: float(v) for k, v in values.items()}
                row.update(step_time=seconds, examples_per_s=tc.batch_size / seconds)
                tick, ticked_step = now, step
                if is_log:
                    writer.write(step, row)
                    history.append({"step": step, **row})
                if is_save:
                    iterator_state = data if data_iterator is None else None
                    checkpoint.save(manager, step, state, iterator_state, config_as_dict(config))
            if preempted:
                if is_chief:
                    print(f"preempted after step {step}: checkpoint saved, exiting with status 42", flush=True)
                raise Preempted(step)
        if pending is not None:
            check_finite(pending[0], jax.device_get(pending[1]), manager)
    finally:
        watcher.__exit__()
        manager.wait_until_finished()
        manager.close()
        writer.close()
    return TrainResult(step=int(jax.device_get(state.step)), state=state, history=history, method=method, mesh=mesh)


def compile_train_step(config: ml_collections.ConfigDict, devices: list[jax.Device] | None = None) -> Any:
    """Lower and compile the update step from shapes alone (no data, no parameters allocated).

    Returns the compiled executable (`.cost_analysis()`, `.memory_analysis()` work on it).
    """
    method = build_method(config)
    mesh = make_mesh(config.mesh.to_dict(), devices)
    init_state, shardings, optimizer, schedule = create_state(config, method, mesh)
    step = make_train_step(config, method, optimizer, schedule, shardings, mesh)
    return step.lower(abstract_state(init_state, shardings), batch_spec(config, config.train.batch_size)).compile()


def restore_state(
    workdir: str,
    step: int | None = None,
    *,
    mesh: dict[str, int] | None = None,
    devices: list[jax.Device] | None = None,
) -> tuple[ml_collections.ConfigDict, Any, TrainState]:
    """`(config, method, state)` from a workdir, restored onto any mesh (resharding restore).

    Args:
      workdir: a training workdir (`config.json` + `checkpoints/`).
      step: the checkpoint step (default: latest).
      mesh: axis sizes `{"data": .., "fsdp": .., "tensor": ..}` to restore onto; default: the
        saved config's mesh, or `{"data": -1}` when that does not fit `devices`.
      devices: the devices of the mesh (default: all).

    Every array is read straight onto its shard of the new mesh; the values are the saved ones.
    """
    config = ml_collections.ConfigDict(checkpoint.read_config(workdir))
    if mesh is None:
        mesh = config.mesh.to_dict()
        try:
            mesh_shape(mesh, len(jax.devices() if devices is None else devices))
        except ValueError:
            mesh = {"data": -1}
    method = build_method(config)
    device_mesh = make_mesh(mesh, devices)
    init_state, shardings, _, _ = create_state(config, method, device_mesh)
    manager = checkpoint.checkpoint_manager(workdir, config.train.keep_checkpoints, async_save=False)
    step = manager.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints")
    state = checkpoint.restore(manager, step, abstract_state(init_state, shardings))
    manager.close()
    return config, method, state


def load_trained(
    workdir: str, step: int | None = None, **mesh_kwargs: Any
) -> tuple[ml_collections.ConfigDict, Any, Any]:
    """`(config, method, params)` from a workdir's `config.json` and checkpoint (latest by default).

    `mesh=` and `devices=` are passed to `restore_state`.
    """
    config, method, state = restore_state(workdir, step, **mesh_kwargs)
    return config, method, state.params


__all__ = [
    "NonFiniteLossError",
    "Preempted",
    "TrainResult",
    "compile_train_step",
    "load_trained",
    "restore_state",
    "train",
]
