"""Masked feature distillation from a frozen teacher: MaskDistill (Peng et al. 2022) and MaskAlign (Xue et al. 2023).

The teacher is any finished mmjax run (a workdir with `config.json` and checkpoints):
its method's `features(params, images, pool="tokens")` gives the target tokens. Its
parameters live in the student's params under `teacher` (frozen: no gradient, no
optimizer state), so a distillation checkpoint is self-contained. The method declares the teacher run
(`frozen_runs`); the trainer reads its config to build the method and loads its checkpoint
once, at the start of a fresh run, for `load_frozen` to copy in.

- `maskdistill`: the student ViT sees every patch, hidden ones as a mask token; a linear
  head predicts the teacher's normalized features at the hidden positions only.
- `maskalign`: the student ViT sees only the visible patches; a linear head aligns its
  tokens with the teacher's features at the same visible positions (no mask token).

Targets are LayerNorm-ed without affine (`target_norm="layernorm"`) or used raw; the loss
is smooth L1 or cosine distance per token (`loss`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.config import dataclass_from_config, knob, section_config
from mmjax.masking.blockwise import blockwise_mask
from mmjax.masking.mask import Mask, random_mask
from mmjax.masking.tokens import gather_tokens
from mmjax.methods.common import pool_tokens
from mmjax.methods.feature_targets import FEATURE_LOSSES, TARGET_NORMS, feature_loss, normalize_targets
from mmjax.methods.protocol import Batch, BuiltRun, LoadedRun, Params, RunPart
from mmjax.methods.registry import register_method
from mmjax.models.config import ViTConfig, vit_config_from_section, vit_section
from mmjax.models.distill import FeatureStudent

MODES = ("maskdistill", "maskalign")
MASKINGS = ("random", "blockwise")


@dataclasses.dataclass(frozen=True)
class DistillOptions:
    """`distill`: the teacher run and MaskDistill's recipe (block-wise mask 40%, smooth L1)."""

    teacher_workdir: str = knob("", "a finished mmjax run (required)")
    teacher_step: int = knob(-1, "the teacher's checkpoint step; -1 = the latest")
    mode: str = knob("maskdistill", f"one of {MODES}")
    loss: str = knob("smooth_l1", f"one of {FEATURE_LOSSES}")
    smooth_l1_beta: float = knob(1.0, "beta of the smooth-L1 loss (MaskDistill)")
    mask_ratio: float = knob(0.4, "fraction of patches hidden from the student, in (0, 1)")
    masking: str = knob("blockwise", f"one of {MASKINGS} (maskalign needs random)")
    target_norm: str = knob("layernorm", f"layernorm (no affine) | none; one of {TARGET_NORMS}")

    def __post_init__(self):
        if not self.teacher_workdir:
            raise ValueError(
                "distill.teacher_workdir is empty; expected the workdir of a finished mmjax run "
                "(e.g. --config.distill.teacher_workdir=/tmp/mae_mnist)"
            )
        for name, allowed in (("mode", MODES), ("loss", FEATURE_LOSSES), ("masking", MASKINGS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"distill.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.target_norm not in TARGET_NORMS:
            raise ValueError(f"distill.target_norm must be one of {TARGET_NORMS}, got {self.target_norm!r}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"distill.mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.mode == "maskalign" and self.masking != "random":
            raise ValueError(
                f"distill.masking={self.masking!r} with mode='maskalign': the visible-only student needs a fixed "
                f"visible count, expected masking='random'"
            )
        if self.smooth_l1_beta <= 0:
            raise ValueError(f"distill.smooth_l1_beta must be positive, got {self.smooth_l1_beta}")


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config: MaskDistill ViT-B/16; generated from the declarations."""
    return ml_collections.ConfigDict(
        {"method": "distill", "model": vit_section(), "distill": section_config(DistillOptions)}
    )


def _input_map(student_data: Any, teacher_data: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel `(scale, shift)` taking student-normalized images to the teacher's normalization."""
    if not student_data or not teacher_data or "mean" not in student_data or "mean" not in teacher_data:
        return (1.0,), (0.0,)
    s_mean, s_std = np.asarray(student_data["mean"], float), np.asarray(student_data["std"], float)
    t_mean, t_std = np.asarray(teacher_data["mean"], float), np.asarray(teacher_data["std"], float)
    scale, shift = s_std / t_std, (s_mean - t_mean) / t_std
    return tuple(float(v) for v in np.atleast_1d(scale)), tuple(float(v) for v in np.atleast_1d(shift))


@dataclasses.dataclass(frozen=True)
class Distill:
    """Feature distillation over params `{"student": ..., "teacher": ...}`; batches hold `image` `[B, H, W, C]`."""

    model_config: ViTConfig
    options: DistillOptions
    teacher: Any  # the teacher run's method
    teacher_dim: int
    input_scale: tuple[float, ...] = (1.0,)
    input_shift: tuple[float, ...] = (0.0,)

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, teacher_run: BuiltRun) -> Distill:
        """Build from an experiment config and the teacher run (read and built by `mmjax.train.build_method`)."""
        options = dataclass_from_config(DistillOptions, config.distill, "distill")
        model_config = vit_config_from_section(config.model)
        teacher_config, teacher = ml_collections.ConfigDict(teacher_run.config), teacher_run.method
        if not hasattr(teacher, "features"):
            raise ValueError(f"the teacher method {teacher_config.method!r} has no `features`; it cannot be a teacher")
        images = jax.ShapeDtypeStruct((1, *model_config.image_size, model_config.channels), jnp.float32)
        try:
            t_params = jax.eval_shape(teacher.init, jax.random.key(0), {"image": images})
            tokens = jax.eval_shape(lambda p, x: teacher.features(p, x, pool="tokens"), t_params, images)
        except ValueError as err:
            raise ValueError(
                f"the teacher in distill.teacher_workdir={options.teacher_workdir!r} does not take the student's "
                f"images [B, {model_config.image_size[0]}, {model_config.image_size[1]}, {model_config.channels}] "
                f"(model.image_size, model.channels): {err}"
            ) from err
        if tokens.shape[1] != 1 + model_config.num_patches:
            raise ValueError(
                f"teacher/student token grids differ: the teacher gives {tokens.shape[1] - 1} patch tokens, the "
                f"student's model.image_size={model_config.image_size} / model.patch_size={model_config.patch_size} "
                f"makes a {model_config.grid} grid of {model_config.num_patches}; expected the same grid"
            )
        scale, shift = _input_map(config.get("data"), teacher_config.get("data"))
        return cls(model_config, options, teacher, int(tokens.shape[-1]), scale, shift)

    @property
    def student(self) -> FeatureStudent:
        return FeatureStudent(self.model_config, self.teacher_dim)

    def _images(self, batch: Batch) -> jax.Array:
        if "image" not in batch:
            raise KeyError(f"distill batches need an 'image' entry [B, H, W, C]; got keys {sorted(batch)}")
        return batch["image"]

    def make_mask(self, rng: jax.Array, batch_size: int) -> Mask:
        """`random` (MAE's, with `ids_keep`) or BEiT `blockwise` mask over the student's grid."""
        n = self.model_config.num_patches
        if self.options.masking == "blockwise":
            budget = max(1, round(n * self.options.mask_ratio))
            return blockwise_mask(rng, batch_size, self.model_config.grid, budget, min_block=min(16, budget))
        return random_mask(rng, batch_size, n, self.options.mask_ratio)

    def _student_inputs(self, mask: Mask) -> dict[str, jax.Array]:
        if self.options.mode == "maskdistill":
            return {"hidden": mask.mask}
        return {"ids_keep": mask.ids_keep}

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        images = self._images(batch)
        mask = self.make_mask(jax.random.key(0), images.shape[0])
        student_key, teacher_key = jax.random.split(rng)
        student = self.student.init(student_key, images, **self._student_inputs(mask))["params"]
        # Random teacher weights of the right shapes: `load_frozen` replaces them with the teacher run's.
        return {"student": nn.meta.unbox(student), "teacher": self.teacher.init(teacher_key, {"image": images})}

    def param_axes(self) -> Params:
        cfg = self.model_config
        images = jax.ShapeDtypeStruct((1, *cfg.image_size, cfg.channels), jnp.float32)
        mask = jax.eval_shape(lambda: self.make_mask(jax.random.key(0), 1))
        shapes = jax.eval_shape(
            lambda x, m: self.student.init(jax.random.key(0), x, **self._student_inputs(m)), images, mask
        )
        return {"student": nn.get_partition_spec(shapes)["params"], "teacher": self.teacher.param_axes()}

    def trainable(self, params: Params) -> Params:
        """The student trains; every teacher leaf is frozen."""
        return {
            "student": jax.tree.map(lambda _: True, params["student"]),
            "teacher": jax.tree.map(lambda _: False, params["teacher"]),
        }

    def frozen_runs(self) -> dict[str, RunPart]:
        """The teacher run, whose parameters `load_frozen` puts under `teacher` (loaded by the trainer)."""
        return {"teacher": teacher_part(self.options)}

    def load_frozen(self, params: Params, runs: dict[str, LoadedRun]) -> Params:
        """Host-side: put the teacher run's parameters (`runs["teacher"]`) under `teacher` (shapes and tree checked)."""
        teacher = runs["teacher"].params
        expected = jax.tree.map(lambda x: (x.shape, x.dtype), params["teacher"])
        got = jax.tree.map(lambda x: (x.shape, x.dtype), teacher)
        if jax.tree.structure(expected) != jax.tree.structure(got) or expected != got:
            raise ValueError(
                f"the checkpoint in distill.teacher_workdir={self.options.teacher_workdir!r} does not match the "
                f"teacher built from its config.json"
            )
        return {**params, "teacher": teacher}

    def teacher_tokens(self, params: Params, images: jax.Array) -> jax.Array:
        """Normalized teacher features of every patch, `[B, N, D_t]`, with `stop_gradient`."""
        scale = jnp.asarray(self.input_scale, jnp.float32)
        shift = jnp.asarray(self.input_shift, jnp.float32)
        tokens = self.teacher.features(params["teacher"], images * scale + shift, pool="tokens")[:, 1:]
        return jax.lax.stop_gradient(normalize_targets(tokens, self.options.target_norm))

    def predict(self, params: Params, images: jax.Array, mask: Mask) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`(pred, target, weights)`: per-token student predictions, teacher targets and where the loss counts.

        MaskDistill: `[B, N, D_t]` over all positions, weights = hidden. MaskAlign: `[B, K, D_t]`
        over the visible positions, all weighted.
        """
        pred = self.student.apply({"params": params["student"]}, images, **self._student_inputs(mask))
        target = self.teacher_tokens(params, images)
        if self.options.mode == "maskdistill":
            return pred, target, mask.mask
        return pred, gather_tokens(target, mask.ids_keep), jnp.ones(pred.shape[:2], bool)

    def loss(
        self, params: Params, batch: Batch, rng: jax.Array, train: bool = True
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Smooth L1 or cosine distance to teacher features on hidden (MaskDistill) / visible (MaskAlign) tokens."""
        del train
        images = self._images(batch)
        mask = self.make_mask(rng, images.shape[0])
        pred, target, weights = self.predict(params, images, mask)
        loss = feature_loss(pred, target, weights, self.options.loss, self.options.smooth_l1_beta)
        return loss, {"loss": loss, "mask_ratio": jnp.mean(mask.mask.astype(jnp.float32))}

    def encoder(self, params: Params) -> tuple[ViTConfig, Params]:
        """The student's `ViTEncoder` (what `features` runs; the teacher is not exported)."""
        return self.model_config, params["student"]["encoder"]

    def features(self, params: Params, images: jax.Array, pool: str = "cls") -> jax.Array:
        """The student's unmasked encoder: `cls` / `mean` `[B, D]`, or `tokens` `[B, 1 + N, D]`."""
        tokens = self.student.apply({"params": params["student"]}, images, method=FeatureStudent.encode)
        return pool_tokens(tokens, pool)


def teacher_part(options: DistillOptions) -> RunPart:
    """The teacher run `distill.teacher_workdir` names (its config builds the teacher, its params fill it)."""
    step = None if options.teacher_step < 0 else options.teacher_step
    return RunPart("distill.teacher_workdir", options.teacher_workdir, step)


def teacher_runs(config: ml_collections.ConfigDict) -> dict[str, RunPart]:
    """What the builder reads: the teacher run's config (`register_method(..., reads=)`)."""
    return {"teacher": teacher_part(dataclass_from_config(DistillOptions, config.distill, "distill"))}


@register_method("distill", reads=teacher_runs, protocols=("linear_probe",))
def build_distill(config: ml_collections.ConfigDict, runs: dict[str, BuiltRun]) -> Distill:
    return Distill.from_config(config, runs["teacher"])


__all__ = ["MODES", "Distill", "DistillOptions", "build_distill", "default_config"]
