"""The EMA teacher whose scores draw guided masks (HPM's predicted loss, AttMask's attention), and HPM's
loss-prediction objective.

A method with a teacher keeps, next to its model's params, `teacher` (an EMA copy of them, not
trained) and `steps_seen` (float32 `[]`, counted by `after_step`); the teacher scores the
whole image and a guided mask kind (`mmjax.masking.registry.SCORES`) hides by those scores.
MAE uses it (`mask.kind=hard_patch`, `attention_guided`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from mmjax.config import knob
from mmjax.losses import normalized_regression_loss, pairwise_ranking_loss
from mmjax.masking.mask import Mask
from mmjax.masking.schedules import ramp
from mmjax.methods.protocol import Params

TEACHER_SCORES = ("predicted_loss", "attention")  # what the teacher computes on the whole image
TEACHER_STATE = ("teacher", "steps_seen")  # the params entries a teacher adds (not trained)


@dataclasses.dataclass(frozen=True)
class TeacherOptions:
    """`teacher`: the EMA copy of the model whose scores draw guided masks (mask.kind=hard_patch, attention_guided)."""

    ema_start: float = knob(0.999, "EMA decay at step 0 (HPM's)", low=0, high=1)
    ema_end: float = knob(0.9999, "the decay after the ramp", low=0, high=1)
    ema_ramp: float = knob(
        0.125, "share of train.steps the decay takes to rise (HPM: 100 of 800 epochs)", low=0, high=1
    )


@dataclasses.dataclass(frozen=True)
class HardPatchOptions:
    """`hpm`: HPM's loss predictor (read with mask.kind=hard_patch)."""

    relative: bool = knob(True, "train the loss predictor on pairwise order (HPM's --relative), else standardized")
    weight: float = knob(1.0, "weight of the loss-prediction term next to the reconstruction loss", low=0)


def with_teacher(model_params: Params, teacher: Params, steps_seen: Any) -> Params:
    """The params of a method with a teacher: the model's entries, `teacher`, `steps_seen`."""
    return {**model_params, "teacher": teacher, "steps_seen": steps_seen}


def student_of(params: Params) -> Params:
    """The model's own entries of a method's params (without `TEACHER_STATE`)."""
    return {name: value for name, value in params.items() if name not in TEACHER_STATE}


def trainable_flags(params: Params) -> Params:
    """Every leaf True but those of the teacher and the step count."""
    return {name: jax.tree.map(lambda _, t=name not in TEACHER_STATE: t, v) for name, v in params.items()}


def teacher_decay(options: TeacherOptions, steps_seen: jax.Array, total_steps: int) -> jax.Array:
    """`ema_start` -> `ema_end` linearly over `ema_ramp * total_steps` steps (at least 1), then flat."""
    return ramp(steps_seen, max(1, round(options.ema_ramp * total_steps)), options.ema_start, options.ema_end)


def ema_step(params: Params, options: TeacherOptions, total_steps: int) -> Params:
    """`teacher <- m * teacher + (1 - m) * model` at `m = teacher_decay(steps_seen)`, and one more `steps_seen`."""
    m = teacher_decay(options, params["steps_seen"], total_steps)
    student = student_of(params)
    teacher = jax.tree.map(lambda t, s: m * t + (1.0 - m) * s, params["teacher"], student)
    return with_teacher(student, teacher, params["steps_seen"] + 1.0)


def whole_image_mask(batch_size: int, num_patches: int) -> Mask:
    """A fixed-count `Mask` that hides nothing (the teacher sees every patch)."""
    every = jnp.broadcast_to(jnp.arange(num_patches, dtype=jnp.int32), (batch_size, num_patches))
    return Mask(mask=jnp.zeros((batch_size, num_patches), bool), ids_keep=every, ids_restore=every)


def loss_prediction(options: HardPatchOptions, predicted: jax.Array, per_patch: jax.Array, weights: jax.Array):
    """HPM's objective for the predicted loss `[B, N]` against each patch's loss `[B, N]` (no gradient) on `weights`."""
    objective = pairwise_ranking_loss if options.relative else normalized_regression_loss
    return objective(predicted, jax.lax.stop_gradient(per_patch), weights)


__all__ = [
    "TEACHER_SCORES",
    "TEACHER_STATE",
    "HardPatchOptions",
    "TeacherOptions",
    "ema_step",
    "loss_prediction",
    "student_of",
    "teacher_decay",
    "trainable_flags",
    "whole_image_mask",
    "with_teacher",
]
