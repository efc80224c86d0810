"""The EMA teacher whose scores draw guided masks (HPM's predicted loss, AttMask's attention).

A method with a teacher keeps, next to its model's params, `teacher` (an EMA copy of them, not
trained) and `steps_seen` (float32 `[]`, counted by `after_step`); the teacher scores the
whole image and a guided mask kind (`mmjax.masking.registry.SCORES`) hides by those scores.
On MAE it is an add-on term (`MaskTeacher`, section `teacher`), on whenever the mask kind reads
one of `TEACHER_SCORES` (`mask.kind=hard_patch`, `attention_guided`): `attention` it computes
itself, the other maps come from the terms that compute them (`Term.scores`, HPM's loss predictor)
on the teacher's forward pass.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from mmjax.config import knob
from mmjax.masking.mask import Mask
from mmjax.masking.registry import needed_scores
from mmjax.masking.schedules import ramp
from mmjax.methods.protocol import Params
from mmjax.methods.terms import Term, register_term
from mmjax.models.transformer import last_block_cls_attention

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


def teacher_inputs(base: Any, params: Params, images: jax.Array) -> dict[str, jax.Array]:
    """The score maps `[B, N]` a guided mask reads from the EMA teacher `params["teacher"]`, on whole images.

    `attention`: the [CLS] row of the last encoder block's attention over the patches, averaged over
    heads (AttMask). Any other teacher map comes from `base.terms`' `scores` on the teacher's
    forward pass over the whole image (HPM's `predicted_loss`). No gradient flows.
    """
    needed, teacher = needed_scores(base.mask_part), params["teacher"]
    maps = {}
    if "attention" in needed:
        _, state = base.model.apply({"params": teacher}, images, method="encode", mutable=["intermediates"])
        blocks = state["intermediates"]["encoder"]["blocks"]
        maps["attention"] = last_block_cls_attention(blocks, base.model_config.depth)[:, 1:]
    if any(name in needed and name not in maps for name in TEACHER_SCORES):
        whole = whole_image_mask(images.shape[0], base.model_config.num_patches)
        _, out = base.model.apply({"params": teacher}, images, whole)
        for term in base.terms:
            maps.update(term.scores(teacher, out))
    return jax.lax.stop_gradient(maps)


@register_term("mae")
@dataclasses.dataclass(frozen=True)
class MaskTeacher(Term):
    """The EMA teacher as a term: its state in the params, its EMA after each step, its scores for the mask."""

    section = "teacher"
    options = TeacherOptions
    supplies = TEACHER_SCORES

    opts: TeacherOptions
    total_steps: int

    @classmethod
    def build(cls, options: TeacherOptions, base: Any) -> MaskTeacher | None:
        wanted = any(name in TEACHER_SCORES for name in needed_scores(base.mask_part))
        return cls(options, base.total_steps) if wanted else None

    def decay(self, steps_seen: Any) -> jax.Array:
        """The EMA decay after `steps_seen` updates (`teacher_decay`)."""
        return teacher_decay(self.opts, steps_seen, self.total_steps)

    def wrap(self, params: Params) -> Params:
        # The teacher starts as an exact copy of the model.
        return with_teacher(params, jax.tree.map(jnp.array, params), jnp.zeros((), jnp.float32))

    def wrap_axes(self, axes: Params) -> Params:
        return with_teacher(axes, axes, jax.sharding.PartitionSpec())

    def trainable(self, flags: Params) -> Params:
        return trainable_flags(flags)

    def after_step(self, params: Params, state_inputs: Any = None) -> Params:
        del state_inputs
        return ema_step(params, self.opts, self.total_steps)

    def mask_inputs(self, base: Any, params: Params, images: jax.Array) -> dict[str, Any]:
        return {"scores": teacher_inputs(base, params, images), "step": params["steps_seen"]}

    def loss(self, step: Any) -> tuple[None, dict[str, jax.Array]]:
        return None, {"teacher_decay": self.decay(step.params["steps_seen"])}


__all__ = [
    "TEACHER_SCORES",
    "TEACHER_STATE",
    "MaskTeacher",
    "TeacherOptions",
    "ema_step",
    "teacher_inputs",
    "student_of",
    "teacher_decay",
    "trainable_flags",
    "whole_image_mask",
    "with_teacher",
]
