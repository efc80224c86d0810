"""Default `seed`, `train`, `mesh`, `sharding` and `eval` sections shared by experiment files."""

from __future__ import annotations

import ml_collections

# Logical parameter axes -> mesh axes. FSDP shards the embedding dimension of every
# weight; tensor parallelism splits heads and the MLP hidden dimension.
DEFAULT_RULES = [
    ["batch", ["data", "fsdp"]],
    ["embed", "fsdp"],
    ["mlp", "tensor"],
    ["heads", "tensor"],
    ["kv", None],
    ["vocab", "tensor"],
    ["layers", None],  # the stacked-layer axis of `model.scan=True`
]


def training_sections(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Add the runtime sections to a method config, every knob with a default."""
    config.seed = 0
    config.train = ml_collections.ConfigDict(
        {
            "steps": 1000,
            "batch_size": 256,
            "lr": 1.5e-4,
            "min_lr": 0.0,
            "warmup_steps": 100,
            "weight_decay": 0.05,
            "b1": 0.9,
            "b2": 0.95,
            "grad_clip": 0.0,  # 0 = no clipping
            "log_every": 50,
            "checkpoint_every": 500,
            "keep_checkpoints": 3,  # the newest confirmed ones; an unconfirmed newer one is kept too
            # A non-finite loss, gradient norm, parameter or Adam moment: "stop" the run, or "skip"
            # the update (parameters and moments unchanged, counted in `skipped_updates`) and stop
            # after `max_consecutive_skips` in a row.
            "on_nonfinite": "stop",
            "max_consecutive_skips": 10,
            "async_checkpoints": True,
            "tensorboard": True,
        }
    )
    config.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "tensor": 1})
    config.sharding = ml_collections.ConfigDict({"rules": DEFAULT_RULES})
    # Multi-process runs (mmjax/train/distributed.py); MMJAX_* environment variables override.
    # enabled=True alone lets JAX auto-detect TPU pods and SLURM; 0 / -1 / "" mean unset.
    config.distributed = ml_collections.ConfigDict(
        {"enabled": False, "coordinator": "", "num_processes": 0, "process_id": -1}
    )
    config.eval = ml_collections.ConfigDict(
        {
            "probe": True,
            "probe_pool": "mean",  # mean of final patch tokens, or "cls"
            "probe_steps": 500,
            "probe_l2": 1e-4,
            "probe_raw_input": True,  # video, audio: also probe the flattened input (a baseline row)
            "batch_size": 250,
            "figure": True,
            "figure_examples": 8,
        }
    )
    return config
