"""Training runtime: mesh and sharding rules, optimizer, checkpoints, metrics, the loop."""

from mmjax.train.loop import (
    NonFiniteLossError,
    TrainResult,
    compile_train_step,
    load_frozen,
    load_trained,
    restore_state,
    train,
)
from mmjax.train.mesh import MESH_AXES, batch_sharding, global_batch, make_mesh, param_shardings
from mmjax.train.optimizer import decay_mask, learning_rate_schedule, make_optimizer
from mmjax.train.preemption import PREEMPTED_EXIT_CODE, Preempted
from mmjax.train.runs import build_method
from mmjax.train.state import TrainState

__all__ = [
    "MESH_AXES",
    "NonFiniteLossError",
    "PREEMPTED_EXIT_CODE",
    "Preempted",
    "TrainResult",
    "TrainState",
    "batch_sharding",
    "build_method",
    "compile_train_step",
    "decay_mask",
    "global_batch",
    "learning_rate_schedule",
    "load_frozen",
    "load_trained",
    "make_mesh",
    "make_optimizer",
    "param_shardings",
    "restore_state",
    "train",
]
