"""The training loop, top to bottom: config -> mesh -> input -> state -> step -> resume -> compile -> loop.

The loop knows only the method protocol (`init`, `loss`, `param_axes`); it never names a
method. It runs unchanged on one CPU, simulated CPU devices, GPUs and TPU pods.

What a run guarantees (tests/test_faults.py):
- every knob is checked before anything is compiled or written (`mmjax.train.validate`);
- one trainer per workdir, and a rerun whose config does not fit the checkpoint is refused
  before any file changes (`mmjax.train.workdir`);
- every saved state is finite, and a checkpoint is kept as "good" only once a later step has
  trained from it (`mmjax.train.finite`, `mmjax.train.retention`);
- a damaged newest checkpoint is moved aside and the one before it resumed
  (`checkpoint.restore_with_fallback`);
- SIGTERM at any moment, start-up included, ends with exit status 42 and the last checkpoint
  intact (`mmjax.train.preemption`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from mmjax.config import ConfigError
from mmjax.data.kinds import data_kind
from mmjax.evaluate.pretraining import evaluate_pretraining
from mmjax.methods.protocol import STATE_INPUTS, LoadedRun
from mmjax.train import checkpoint, distributed
from mmjax.train.checkpoint import config_as_dict
from mmjax.train.finite import (
    NONFINITE_LEAF,
    NonFiniteGuard,
    NonFiniteLossError,
    checked_leaf_names,
    first_nonfinite_leaf,
    keep_if,
    step_is_good,
)
from mmjax.train.mesh import batch_sharding, global_batch, make_mesh, mesh_shape, param_shardings, replicated
from mmjax.train.metrics import MetricWriter, Progress, duration
from mmjax.train.optimizer import decay_mask, make_optimizer, weight_decay_schedule
from mmjax.train.preemption import Preempted, PreemptionWatcher
from mmjax.train.retention import Retention
from mmjax.train.runs import build_method, keep_run_configs
from mmjax.train.state import TrainState
from mmjax.train.validate import check_batch_divides, check_runtime_config
from mmjax.train.workdir import WorkdirLock, check_resumable, truncate_metrics


@dataclasses.dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
      step: the step the state is at.
      state: the final `TrainState` (sharded over `mesh`).
      history: the logged metric rows of this call.
      method, mesh: the built method and device mesh.
      already_complete: the workdir's checkpoint had reached `train.steps`; nothing was trained.
    """

    step: int
    state: TrainState
    history: list[dict[str, float]]
    method: Any
    mesh: Any
    already_complete: bool = False


def create_state(config: ml_collections.ConfigDict, method: Any, mesh: Any):
    """Abstract-first state creation: every array is born on its shard.

    Returns `(init_fn, state_shardings, optimizer, schedule)`; `init_fn()` makes a fresh
    state (with the runs the method declares in `frozen_runs` loaded into it by its
    `load_frozen`, when it has one).
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
    shardings = TrainState(
        step=replicated(mesh),
        params=p_shardings,
        opt_state=opt_shardings,
        rng=replicated(mesh),
        skipped=replicated(mesh),
    )
    init_key, run_key = jax.random.split(jax.random.key(config.seed))

    def init() -> TrainState:
        params = method.init(init_key, example)
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=optimizer.init(params),
            rng=jax.random.key_data(run_key),
            skipped=jnp.zeros((), jnp.int32),
        )

    jitted_init = jax.jit(init, out_shardings=shardings)
    if not hasattr(method, "load_frozen"):
        return jitted_init, shardings, optimizer, schedule

    def init_with_frozen() -> TrainState:
        state = jitted_init()
        return state.replace(params=jax.device_put(load_frozen(method, state.params), p_shardings))

    # Loading the declared runs reads files and keeps shapes: shapes come from the plain init, untraced.
    init_with_frozen.without_frozen = jitted_init
    return init_with_frozen, shardings, optimizer, schedule


def abstract_state(init_state: Any, shardings: TrainState) -> TrainState:
    """Shapes, dtypes and shardings of the state `init_state()` would make, allocating nothing."""
    return jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
        jax.eval_shape(getattr(init_state, "without_frozen", init_state)),
        shardings,
    )


def batch_spec(config: ml_collections.ConfigDict, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    """Shapes and dtypes of a host batch of `config.data`'s kind."""
    return data_kind(config.data).batch_spec(config.data, batch_size)


def make_train_step(config, method, optimizer, schedule, state_shardings, mesh):
    """One jitted update with donated state: grads, clip + AdamW, the method's `after_step`, metrics.

    The metrics carry the finite check (`mmjax.train.finite`): `NONFINITE_LEAF`, the first
    parameter or optimizer leaf that is not finite after the update (-1: none). With
    `train.on_nonfinite="skip"` a bad update is dropped inside the step (the state keeps the
    parameters and moments it had) and counted in `state.skipped`.
    """
    kind = data_kind(config.data)
    spec = kind.batch_spec(config.data, config.train.batch_size)
    batch_shardings = {name: batch_sharding(mesh, len(s.shape)) for name, s in spec.items()}
    after_step = getattr(method, "after_step", None)
    skip = config.train.on_nonfinite == "skip"
    weight_decay = weight_decay_schedule(config.train)  # logged when it is a schedule

    def step(state: TrainState, batch: dict[str, jax.Array]) -> tuple[TrainState, dict[str, jax.Array]]:
        batch = kind.prepare(batch, config.data)
        grad_fn = jax.value_and_grad(method.loss, has_aux=True)
        (loss, metrics), grads = grad_fn(state.params, batch, state.step_key(), True)
        state_inputs = metrics.pop(STATE_INPUTS, None)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if after_step is not None:
            params = after_step(params, state_inputs, state.step)
        grad_norm = optax.tree.norm(grads)
        bad_leaf = first_nonfinite_leaf((params, opt_state))
        good = step_is_good(loss, grad_norm, bad_leaf)
        skipped = state.skipped
        if skip:
            params, opt_state = keep_if(good, (params, opt_state), (state.params, state.opt_state))
            skipped = skipped + (~good).astype(jnp.int32)
        metrics = {
            **metrics,
            "loss": loss,
            "grad_norm": grad_norm,
            "lr": schedule(state.step),
            NONFINITE_LEAF: bad_leaf,
        }
        if skip:
            metrics["skipped_updates"] = skipped
        if callable(weight_decay):
            metrics["weight_decay"] = weight_decay(state.step)
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state, skipped=skipped)
        return new_state, metrics

    return jax.jit(
        step,
        in_shardings=(state_shardings, batch_shardings),
        out_shardings=(state_shardings, replicated(mesh)),
        donate_argnums=(0,),
    )


def _say(text: str) -> None:
    if distributed.is_chief():
        print(text, flush=True)


def _resume(
    manager: Any, workdir: str, run_config: dict, abstract: TrainState, iterator: Any
) -> tuple[int, TrainState] | None:
    """The newest checkpoint that restores and fits `run_config`: `(step, state)`, or None (fresh run)."""

    def attempt(step: int) -> TrainState:
        changes = check_resumable(checkpoint.saved_config(manager, step), run_config, workdir, step)
        if iterator is not None and checkpoint.is_legacy(manager, step):
            raise ConfigError(
                f"checkpoint step {step} of {workdir} was written by an older mmjax, whose data position counts "
                "batches (today's counts examples): resuming it would misplace the data. `eval` and `export` "
                "still read it; to train on, pass another --workdir"
            )
        written_by = checkpoint.data_process_count(workdir, step) if iterator is not None else None
        if written_by is not None and written_by != jax.process_count():
            raise ConfigError(
                f"checkpoint step {step} of {workdir} was written by {written_by} processes and this run has "
                f"{jax.process_count()} (distributed.num_processes): each process's data position is saved; "
                f"rerun with {written_by} processes, or pass another --workdir"
            )
        state = checkpoint.restore(manager, step, abstract, iterator)
        if changes:
            _say(f"changed on resume: {'; '.join(changes)}")
        return state

    return checkpoint.restore_with_fallback(manager, workdir, attempt, say=_say)


def train(
    config: ml_collections.ConfigDict,
    workdir: str,
    *,
    data_iterator: Iterator | None = None,
    devices: list[jax.Device] | None = None,
    watcher: PreemptionWatcher | None = None,
    restart: bool = False,
) -> TrainResult:
    """Train `config.method` per `config.train`, resuming from `workdir` when it has checkpoints.

    Args:
      config: a resolved experiment config (`experiments/*.py`).
      workdir: checkpoints, `metrics.jsonl`, `config.json` and figures go here.
      data_iterator: replaces the configured grain pipeline (its state is then not
        checkpointed); yields host batches shaped like `batch_spec(config, b)`, for
        images `{"image": uint8 [b, H, W, C], "label": [b]}`.
      devices: the devices of the mesh (default: all).
      watcher: a `PreemptionWatcher` already installed by the caller (the command line installs
        one before anything else, so a SIGTERM during start-up is caught); default: one of its own.
      restart: start from step 0 when the workdir holds only unfinished saves (a run killed while
        writing its first checkpoints); without it that is refused.

    Raises:
      ConfigError: a knob, or a config that does not fit the workdir's checkpoint (nothing written).
      WorkdirBusyError: another run holds the workdir.
      InterruptedSavesError: the workdir holds only unfinished saves and `restart` is False.
      NonFiniteLossError: a NaN / Inf stopped the run (no non-finite state was saved).
      Preempted: SIGTERM; the checkpoint of the step named is saved (exit status 42).
    """
    check_runtime_config(config)
    started = distributed.initialize(config.get("distributed"))
    with contextlib.ExitStack() as stack:
        if watcher is None:
            watcher = stack.enter_context(PreemptionWatcher())
        elif started:
            watcher.reinstall()
        stack.enter_context(WorkdirLock(workdir, enabled=distributed.is_chief()))
        return _train(config, workdir, data_iterator, devices, watcher, restart)


def _train(config, workdir, data_iterator, devices, watcher, restart) -> TrainResult:
    tc = config.train
    # --- Method and mesh --------------------------------------------------------------
    method = build_method(config, workdir)
    mesh = make_mesh(config.mesh.to_dict(), devices)
    check_batch_divides(tc.batch_size, mesh.shape["data"] * mesh.shape["fsdp"], jax.process_count())
    run_config = config_as_dict(config)

    # --- Input: each process reads its own slice; the iterator state is checkpointed ----
    if data_iterator is None:
        dataset = data_kind(config.data).train_dataset
        data = iter(dataset(config.data, tc.batch_size, config.seed, jax.process_index(), jax.process_count()))
    else:
        data = data_iterator

    # --- State and update step --------------------------------------------------------
    init_state, state_shardings, optimizer, schedule = create_state(config, method, mesh)
    abstract = abstract_state(init_state, state_shardings)
    train_step = make_train_step(config, method, optimizer, schedule, state_shardings, mesh)

    # --- Resume: the newest checkpoint that restores and fits this config ----------------
    unfinished = checkpoint.check_restartable(workdir, restart)  # before the manager removes them
    manager = checkpoint.checkpoint_manager(workdir, tc.async_checkpoints)
    try:
        resumed = _resume(manager, workdir, run_config, abstract, data if data_iterator is None else None)
        state = init_state() if resumed is None else resumed[1]
        start = int(jax.device_get(state.step))
        if unfinished:
            _say(f"removed the unfinished save of step {', '.join(map(str, unfinished))} (stopped while writing)")
        if resumed is not None:
            _say(f"resumed from step {start} in {workdir}")
        if start >= tc.steps:
            _say(f"the run in {workdir} is complete (step {start}, train.steps={tc.steps}); nothing to train")
            _record_start(config, workdir, start)
            return TrainResult(start, state, [], method, mesh, already_complete=True)
        run = _Run(
            config=config,
            workdir=workdir,
            method=method,
            mesh=mesh,
            data=data,
            saved_iterator=data if data_iterator is None else None,
            manager=manager,
            retention=Retention(
                manager,
                workdir,
                tc.keep_checkpoints,
                unconfirmed=() if resumed is None else (start,),
                async_save=tc.async_checkpoints,
            ),
            watcher=watcher,
        )
        return _loop(run, train_step, state, start)
    finally:
        checkpoint.wait(manager)
        manager.close()


def _record_start(config: ml_collections.ConfigDict, workdir: str, start: int) -> None:
    """The run has started (or found itself complete): write its config and the configs of the runs it read,
    and cut `metrics.jsonl` back to `start`. Not before: a run stopped during start-up changes no file."""
    if distributed.is_chief():
        checkpoint.write_config(workdir, config_as_dict(config))
        keep_run_configs(workdir, config)
        truncate_metrics(workdir, start)


@dataclasses.dataclass
class _Run:
    """What the loop works with, set up by `_train`."""

    config: ml_collections.ConfigDict
    workdir: str
    method: Any
    mesh: Any
    data: Iterator
    saved_iterator: Any  # the grain iterator whose state goes into checkpoints (None: not saved)
    manager: Any
    retention: Retention
    watcher: PreemptionWatcher


def _loop(run: _Run, train_step: Any, state: TrainState, start: int) -> TrainResult:
    config, mesh, data, retention, watcher = run.config, run.mesh, run.data, run.retention, run.watcher
    tc, every = config.train, config.eval.every_steps
    names = [f"params/{n}" for n in checked_leaf_names(state.params)]
    names += [f"opt_state/{n}" for n in checked_leaf_names(state.opt_state)]
    guard = NonFiniteGuard(tc.on_nonfinite, tc.max_consecutive_skips, names)

    decayed = jax.tree.leaves(decay_mask(state.params, tc.no_decay))
    _say(f"weight decay on {sum(decayed)} of {len(decayed)} parameter arrays (the others match train.no_decay)")

    # --- Compile: announced, and timed ---------------------------------------------------
    first = global_batch(next(data), mesh)
    _say(f"compiling the train step ({config.method}, global batch {tc.batch_size}, mesh {dict(mesh.shape)}) ...")
    began = time.perf_counter()
    compiled = train_step.lower(state, first).compile()
    _say(f"compiled in {duration(time.perf_counter() - began)}")
    if watcher.agree_now():  # a SIGTERM during start-up: nothing new to save
        _say(
            f"stopped during start-up: the workdir is as it was (step {start}); "
            f"exiting with status {watcher.exit_status}"
        )
        raise Preempted(start, watcher.exit_status)
    _record_start(config, run.workdir, start)

    # --- Loop ---------------------------------------------------------------------------
    writer = MetricWriter(run.workdir, tensorboard=tc.tensorboard)
    progress = Progress(start, tc.steps)
    history: list[dict[str, float]] = []
    pending = None  # (step, device metrics) not yet checked on the host
    tick, ticked_step = time.perf_counter(), start
    row: dict[str, float] = {}
    recorded: set[int] = set()  # bad steps already written to metrics.jsonl

    def settle(step: int, device_metrics: Any) -> dict[str, Any]:
        """Check `step` on the host: stop on a bad one, confirm the checkpoints a good one vouches for."""
        values = jax.device_get(device_metrics)
        good, stop = guard.check(step, values)
        if not good:  # on record, whether it stops the run or is skipped (NaN / Inf as null)
            bad = {k: float(v) for k, v in values.items() if k != NONFINITE_LEAF}
            writer.write(step, bad)
            history.append({"step": step, **bad})
            recorded.add(step)
        if stop is not None:
            raise _stopped(stop, step, guard, retention)
        if good:
            retention.confirm_before(step)
        return values

    step = start
    try:
        for step in range(start + 1, tc.steps + 1):
            batch = first if step == start + 1 else global_batch(next(data), mesh)  # the one host -> device copy
            with jax.transfer_guard("disallow"):
                state, metrics = compiled(state, batch)
            if pending is not None:  # check the previous step while this one runs
                row.update(settle(*pending))
                progress.update(pending[0], row)
            pending = (step, metrics)
            preempted = watcher.should_stop()  # every process stops after the same step
            is_log = step % tc.log_every == 0 or step == tc.steps
            is_eval = every > 0 and step % every == 0 and step < tc.steps and not preempted  # the last: the caller's
            is_save = step % tc.checkpoint_every == 0 or step == tc.steps or preempted or is_eval
            if is_log or is_save:
                values = settle(*pending)
                pending = None
                now = time.perf_counter()
                seconds = (now - tick) / max(1, step - ticked_step)
                row = {k: float(v) for k, v in values.items() if k != NONFINITE_LEAF}
                row.update(step_time=seconds, examples_per_s=tc.batch_size / seconds)
                tick, ticked_step = now, step
                if is_log and step not in recorded:
                    writer.write(step, row)
                    history.append({"step": step, **row})
                    progress.update(step, row, force=True)
                if is_save:
                    checkpoint.save(run.manager, step, state, run.saved_iterator, config_as_dict(config))
                    retention.saved(step)
                if is_eval:  # after its checkpoint: a SIGTERM here ends the process, and a rerun resumes there
                    with watcher.immediate(step):
                        evaluate_pretraining(config, run.method, state.params, run.workdir, step=step)
                    tick = time.perf_counter()  # step_time counts training only
            if preempted:
                _say(f"stopped after step {step}: checkpoint saved, exiting with status {watcher.exit_status}")
                raise Preempted(step, watcher.exit_status)
        if pending is not None:
            settle(*pending)
        checkpoint.wait(run.manager)
        retention.all_written()
        retention.confirm_before(tc.steps + 1)  # the last state is finite and nothing trains from it here
    except (Preempted, NonFiniteLossError):
        raise
    except Exception as err:
        err.mmjax_failed_at_step = step  # a failure after the run started (the command line exits 1)
        raise
    finally:
        writer.close()
    return TrainResult(int(jax.device_get(state.step)), state, history, run.method, mesh)


def _stopped(reason: str, step: int, guard: NonFiniteGuard, retention: Retention) -> NonFiniteLossError:
    """The error that ends a run on non-finite values, after moving aside the checkpoints it discredits."""
    moved = retention.reject_from(guard.bad_run_start - 1)  # the state that step started from is suspect
    parts = [f"{reason}; stopping"]
    for bad, path in moved:
        parts.append(f"checkpoint {bad} moved to {path} (the loss from its parameters is not finite)")
    last = retention.last_kept()
    if last is None:
        parts.append("no checkpoint is kept, so a rerun starts from scratch")
    else:
        parts.append(
            f"the last good checkpoint is step {last}; a rerun resumes from it (lower train.lr, or set "
            "train.on_nonfinite=skip)"
        )
    return NonFiniteLossError(". ".join([parts[0]] + [p[0].upper() + p[1:] for p in parts[1:]]), step)


def compile_train_step(config: ml_collections.ConfigDict, devices: list[jax.Device] | None = None) -> Any:
    """Lower and compile the update step from shapes alone (no data, no parameters allocated).

    Returns the compiled executable (`.cost_analysis()`, `.memory_analysis()` work on it).
    """
    method = build_method(config)
    mesh = make_mesh(config.mesh.to_dict(), devices)
    init_state, shardings, optimizer, schedule = create_state(config, method, mesh)
    step = make_train_step(config, method, optimizer, schedule, shardings, mesh)
    return step.lower(abstract_state(init_state, shardings), batch_spec(config, config.train.batch_size)).compile()


READ_AGAIN = 10  # `restore_state`: reads of a newer checkpoint after the one being read was deleted


def restore_state(
    workdir: str,
    step: int | None = None,
    *,
    mesh: dict[str, int] | None = None,
    devices: list[jax.Device] | None = None,
    say: Callable[[str], None] = _say,
) -> tuple[ml_collections.ConfigDict, Any, TrainState]:
    """`(config, method, state)` from a workdir, restored onto any mesh (resharding restore).

    Args:
      workdir: a training workdir (`checkpoints/`).
      step: the checkpoint step (default: the newest that restores; a damaged newer one is
        reported and left in place).
      mesh: axis sizes `{"data": .., "fsdp": .., "tensor": ..}` to restore onto; default: the
        saved config's mesh, or `{"data": -1}` when that does not fit `devices`.
      devices: the devices of the mesh (default: all).

    The config is the one stored with the checkpoint (what its state was trained with), not
    the workdir's `config.json`. Every array is read straight onto its shard of the new mesh.
    A run still training may delete the checkpoint being read (`train.keep_checkpoints`): then
    the newest one is read again, up to `READ_AGAIN` times (a loaded machine reads slower than a
    small run writes a checkpoint a step).
    """
    if mesh is not None:
        mesh_shape(mesh, len(jax.devices() if devices is None else devices))  # a bad mesh is the caller's error
    for retries in reversed(range(READ_AGAIN + 1)):
        manager = checkpoint.open_for_reading(workdir)
        try:
            listed = set(manager.all_steps())
            with checkpoint.quiet_reads():
                return _restore_from(manager, workdir, step, mesh, devices, say)
        except checkpoint.CheckpointRestoreError:
            # A run still training may have deleted the checkpoint while it was read: read the newest again.
            if not retries or step is not None or set(checkpoint.steps_on_disk(workdir)) == listed:
                raise
        finally:
            manager.close()
    raise AssertionError("unreachable")


def _restore_from(
    manager: Any, workdir: str, step: int | None, mesh: Any, devices: Any, say: Callable[[str], None]
) -> tuple[ml_collections.ConfigDict, Any, TrainState]:
    """`restore_state` with one read-only manager."""
    steps = manager.all_steps()
    if not steps:
        raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints: is it a training workdir?")
    if step is not None and step not in steps:
        raise FileNotFoundError(f"no checkpoint at step {step} in {workdir}; it has steps {sorted(steps)}")

    def attempt(at: int) -> tuple[ml_collections.ConfigDict, Any, TrainState]:
        config = ml_collections.ConfigDict(checkpoint.saved_config(manager, at))
        sizes = config.mesh.to_dict() if mesh is None else mesh
        try:
            mesh_shape(sizes, len(jax.devices() if devices is None else devices))
        except ValueError:
            sizes = {"data": -1}  # the saved mesh does not fit these devices
        method = build_method(config, workdir)
        init_state, shardings, _, _ = create_state(config, method, make_mesh(sizes, devices))
        return config, method, checkpoint.restore(manager, at, abstract_state(init_state, shardings))

    if step is not None:
        return attempt(step)
    found = checkpoint.restore_with_fallback(manager, workdir, attempt, move_failed=False, say=say)
    if found is None:  # deleted since it was listed
        raise checkpoint.CheckpointRestoreError(f"no checkpoint of {workdir} is left to restore")
    return found[1]


def load_trained(
    workdir: str, step: int | None = None, **mesh_kwargs: Any
) -> tuple[ml_collections.ConfigDict, Any, Any]:
    """`(config, method, params)` from a workdir's checkpoint (latest by default) and its stored config.

    `mesh=` and `devices=` are passed to `restore_state`.
    """
    config, method, state = restore_state(workdir, step, **mesh_kwargs)
    return config, method, state.params


def load_frozen(method: Any, params: Any) -> Any:
    """`params` with the frozen parts the method takes from other runs filled in (host-side, untraced).

    Loads each run of `method.frozen_runs()` (`{part: RunPart}`) with `load_trained` and hands
    them, `{part: LoadedRun}`, to the method's pure `load_frozen(params, runs)`. A method without
    `load_frozen` gets `params` back.
    """
    if not hasattr(method, "load_frozen"):
        return params
    parts = method.frozen_runs() if hasattr(method, "frozen_runs") else {}
    runs = {name: LoadedRun(*load_trained(part.workdir, part.step)) for name, part in parts.items()}
    return method.load_frozen(params, runs)


__all__ = [
    "NonFiniteLossError",
    "Preempted",
    "TrainResult",
    "compile_train_step",
    "load_frozen",
    "load_trained",
    "restore_state",
    "train",
]
