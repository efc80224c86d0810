"""The runtime sections of an experiment config (`seed`, `train`, `mesh`, `sharding`, `distributed`, `eval`).

Each section is declared once, as a frozen dataclass whose fields are `knob`s: the default,
the meaning and the allowed values live here and nowhere else (`eval` and its protocols'
sections in `mmjax.evaluate.sections`). `training_sections` builds the `ConfigDict` sections
from these declarations; `check_runtime_config` (`mmjax/train/validate.py`) checks a resolved
config against them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from mmjax.config import ConfigError, knob, section_config
from mmjax.evaluate.protocols import eval_config
from mmjax.evaluate.sections import EvalSection
from mmjax.methods import registry

# Logical parameter axes -> mesh axes. FSDP shards the embedding dimension of every
# weight; tensor parallelism splits heads and the MLP hidden dimension.
DEFAULT_RULES = (
    ("batch", ("data", "fsdp")),
    ("embed", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("kv", None),
    ("vocab", "tensor"),
    ("layers", None),  # the stacked-layer axis of `model.scan=True`
)

# Parameters whose path matches any of these get no weight decay (MAE's rule: biases,
# norms, learned tokens (cls, mask, TimesBERT's [DOM] / [VAR]) and position embeddings).
NO_DECAY_DEFAULT = (r".*/bias$", r".*norm.*/scale$", r".*_token$", r".*pos_embedding$")

NONFINITE_POLICIES = ("stop", "skip")


@dataclasses.dataclass(frozen=True)
class TrainSection:
    """`train`: the optimizer, the schedule, logging and checkpoints."""

    steps: int = knob(1000, "optimizer updates", low=1)
    batch_size: int = knob(256, "global batch (all processes)", low=1)
    lr: float = knob(1.5e-4, "peak learning rate, after the linear warmup", low=0, low_open=True)
    min_lr: float = knob(0.0, "learning rate at the end of the half-cycle cosine", low=0)
    warmup_steps: int = knob(100, "linear warmup from 0 to lr", low=0)
    weight_decay: float = knob(0.05, "AdamW decoupled weight decay (the start when weight_decay_end is set)", low=0)
    weight_decay_end: float | None = knob(None, "set: cosine weight decay from weight_decay to this (I-JEPA)", low=0)
    no_decay: tuple[str, ...] = knob(NO_DECAY_DEFAULT, "regexes of parameter paths without weight decay")
    b1: float = knob(0.9, "Adam beta1", low=0, high=1, high_open=True)
    b2: float = knob(0.95, "Adam beta2", low=0, high=1, high_open=True)
    grad_clip: float = knob(0.0, "clip by global norm; 0 = no clipping", low=0)
    layer_decay: float = knob(
        1.0,
        "layer-wise lr decay (BEiT, MAE fine-tuning): block i of L trains at lr * decay^(L - i); 1 = off",
        low=0,
        low_open=True,
        high=1,
    )
    log_every: int = knob(50, "steps between metric rows", low=1)
    checkpoint_every: int = knob(500, "steps between checkpoints", low=1)
    keep_checkpoints: int = knob(3, "the newest confirmed ones; an unconfirmed newer one is kept too", low=1)
    # A non-finite loss, gradient norm, parameter or Adam moment: "stop" the run, or "skip"
    # the update (parameters and moments unchanged, counted in `skipped_updates`) and stop
    # after `max_consecutive_skips` in a row.
    on_nonfinite: str = knob("stop", "what a non-finite step does", choices=NONFINITE_POLICIES)
    max_consecutive_skips: int = knob(10, "skipped updates in a row before the run stops", low=1)
    async_checkpoints: bool = knob(True, "write checkpoints in the background")
    tensorboard: bool = knob(True, "also write TensorBoard event files")

    def __post_init__(self):
        if self.min_lr > self.lr:
            raise ConfigError(f"train.min_lr={self.min_lr!r}: expected at most train.lr={self.lr!r}")


@dataclasses.dataclass(frozen=True)
class MeshSection:
    """`mesh`: device counts per axis; -1 = every device left over."""

    data: int = knob(-1, "data-parallel axis", low=-1)
    fsdp: int = knob(1, "fully sharded data-parallel axis (shards the `embed` parameter axis)", low=-1)
    tensor: int = knob(1, "tensor-parallel axis (heads, MLP, vocabulary)", low=-1)


@dataclasses.dataclass(frozen=True)
class ShardingSection:
    """`sharding`: logical parameter axis -> mesh axis (or axes, or None = replicated)."""

    rules: tuple = knob(DEFAULT_RULES, "pairs (logical axis, mesh axis | (mesh axes) | None)")


@dataclasses.dataclass(frozen=True)
class DistributedSection:
    """`distributed`: multi-process runs (`mmjax/train/distributed.py`); MMJAX_* environment variables override.

    `enabled=True` alone lets JAX auto-detect TPU pods and SLURM; 0 / -1 / "" mean unset.
    """

    enabled: bool = knob(False, "call jax.distributed.initialize")
    coordinator: str = knob("", "host:port of process 0")
    num_processes: int = knob(0, "processes in the run", low=0)
    process_id: int = knob(-1, "this process's index", low=-1)


# Section name -> declaration, for every runtime section (the method's own are declared by the method).
RUNTIME_SECTIONS: dict[str, type] = {
    "train": TrainSection,
    "mesh": MeshSection,
    "sharding": ShardingSection,
    "distributed": DistributedSection,
    "eval": EvalSection,
}


def training_sections(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Add the runtime sections to a method config (`config.method` set), every knob with its declared default.

    `eval.protocols` starts as the protocols `config.method` declared where it is registered.
    """
    config.seed = 0
    for name, section in runtime_sections(config.method).items():
        config[name] = section
    return config


def runtime_sections(method: str) -> dict[str, ml_collections.ConfigDict]:
    """The runtime sections of a run of `method`, with their defaults."""
    return {
        name: eval_config(method) if name == "eval" else section_config(declaration)
        for name, declaration in RUNTIME_SECTIONS.items()
    }


def runtime_defaults(method: str) -> dict[str, Any]:
    """The runtime sections' defaults as plain dicts (what `python -m mmjax config` compares to)."""
    return {"seed": 0, **{name: section.to_dict() for name, section in runtime_sections(method).items()}}


def library_defaults(method: str) -> ml_collections.ConfigDict:
    """The config a method starts from: its module's `default_config()` plus the runtime sections."""
    return training_sections(registry.method_module(method).default_config())
