"""AdamW with warmup + cosine, gradient clipping, and weight decay chosen by parameter-path rules."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from mmjax.config import dataclass_from_config
from mmjax.train.defaults import NO_DECAY_DEFAULT, TrainSection


def train_section(config: Any) -> TrainSection:
    """A `train` section (ConfigDict, mapping or `TrainSection`) checked, the fields it lacks at their defaults."""
    return config if isinstance(config, TrainSection) else dataclass_from_config(TrainSection, config, "train")


def path_name(path: tuple) -> str:
    """A key path as `encoder/blocks/block_0/mlp/fc1/kernel`."""
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def decay_mask(params: Any, no_decay: Sequence[str] = NO_DECAY_DEFAULT) -> Any:
    """Boolean tree: True where weight decay applies."""
    patterns = [re.compile(p) for p in no_decay]
    return jax.tree_util.tree_map_with_path(
        lambda path, _: not any(p.fullmatch(path_name(path)) for p in patterns), params
    )


def learning_rate_schedule(config: Any) -> optax.Schedule:
    """Linear warmup to `train.lr`, then half-cycle cosine to `train.min_lr` at `train.steps`."""
    config = train_section(config)
    warmup = min(config.warmup_steps, config.steps)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.lr,
        warmup_steps=warmup,
        decay_steps=max(config.steps, warmup + 1),
        end_value=config.min_lr,
    )


def weight_decay_schedule(config: Any) -> float | optax.Schedule:
    """`train.weight_decay`, constant; or a cosine to `train.weight_decay_end` when that is set.

    The cosine runs over `train.steps` (I-JEPA: 0.04 -> 0.4):
    `end + (start - end) * (1 + cos(pi * step / steps)) / 2`.
    """
    config = train_section(config)
    end = config.weight_decay_end
    if end is None:
        return config.weight_decay
    start, steps = float(config.weight_decay), max(int(config.steps), 1)

    def schedule(step):
        progress = jnp.minimum(jnp.asarray(step, jnp.float32) / steps, 1.0)
        return end + (start - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))

    return schedule


def make_optimizer(
    config: Any, params: Any, trainable: Any | None = None
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The optimizer of `train`: clip by global norm, then AdamW with the decay mask.

    `trainable`, a bool tree like `params`, freezes the False leaves: their updates are
    zero, no Adam moments are kept for them, and their gradients do not count in the clip.
    """
    del params  # the decay mask is computed from the tree optax passes in
    config = train_section(config)
    schedule = learning_rate_schedule(config)
    no_decay = config.no_decay
    parts = []
    if config.grad_clip:
        parts.append(optax.clip_by_global_norm(config.grad_clip))
    parts.append(
        optax.adamw(
            schedule,
            b1=config.b1,
            b2=config.b2,
            weight_decay=weight_decay_schedule(config),
            # A callable: under `trainable`, the frozen leaves arrive as empty `MaskedNode`s.
            mask=lambda p: decay_mask(p, no_decay),
        )
    )
    optimizer = optax.chain(*parts)
    if trainable is not None:
        labels = jax.tree.map(lambda t: "train" if t else "frozen", trainable)
        optimizer = optax.multi_transform({"train": optimizer, "frozen": optax.set_to_zero()}, labels)
    return optimizer, schedule
