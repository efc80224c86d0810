"""The method protocol the trainer relies on (DESIGN.md principle 3)."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol

import jax

Params = Any
Batch = dict[str, jax.Array]

# A `loss` metrics entry under this key is not logged: the trainer pops it and hands it
# to `method.after_step` (batch statistics for an EMA codebook, for example).
STATE_INPUTS = "state_inputs"


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """One number of an end-of-run evaluation (a row of `eval.json`).

    Attributes:
      protocol: what was measured, e.g. `linear probe`, `kNN`, `masked-token prediction`,
        `imputation`, `forecast`, `tokenizer reconstruction`, `class-conditional samples`.
      name: whose number it is: the trained model (`mae encoder`, `mlm model`) or a baseline
        (`random encoder`, `raw pixels`, `unigram`, `column means`, `linear interpolation`).
      metric: `accuracy`, `RMSE`, `cross-entropy`, `Frechet distance`, ... Accuracies and other
        shares are fractions in [0, 1]; tables print them as percentages.
      value: the number.
      baseline: True for a reference row (not the trained model).
      split: the data it was measured on (`test`, `train`, ...).
    """

    protocol: str
    name: str
    metric: str
    value: float
    baseline: bool = False
    split: str = "test"


@dataclasses.dataclass(frozen=True)
class RunPart:
    """Another finished run a method takes a part from; the trainer reads it, never the method.

    Attributes:
      field: the config field that names the run, for messages (`beit.tokenizer_workdir`).
      workdir: the run's workdir.
      step: its checkpoint step (None: the latest).
      hint: what to say when `workdir` holds no run (no `config.json`).
    """

    field: str
    workdir: str
    step: int | None = None
    hint: str = "expected a finished mmjax run (python -m mmjax train --workdir ...)"


class BuiltRun(NamedTuple):
    """A run whose config a method's builder reads: its stored config and the method it builds."""

    config: Any
    method: Any


class LoadedRun(NamedTuple):
    """A run the trainer loaded for a method: its stored config, its method and its parameters (host)."""

    config: Any
    method: Any
    params: Any


class Method(Protocol):
    """A masked-modeling method: a small bundle of pure functions over a params pytree.

    Required: `init`, `loss`, `param_axes`. Optional hooks the trainer uses when present:

    - `trainable(params) -> pytree of bool`: False leaves are frozen (a teacher, an EMA
      target, an EMA codebook); the optimizer neither updates them nor keeps moments for them.
    - `after_step(params, state_inputs, step) -> params`: a non-gradient update inside the
      jitted step, after the optimizer (EMA targets, codebook statistics, dead-code restarts).
      `state_inputs` is what `loss` returned under `metrics[STATE_INPUTS]` (or None);
      `step` is the number of updates applied before this one.
    - `frozen_runs() -> {part: RunPart}`: the other finished runs (a teacher, a tokenizer) whose
      parameters this method takes. The method only declares them: the trainer
      (`mmjax.train.load_frozen`) loads each run with `load_trained`, once, on a fresh run
      (not on resume), and hands them to `load_frozen`. A method never imports the trainer.
    - `load_frozen(params, runs) -> params`: host-side, pure: copy the frozen parts out of
      `runs` (`{part: LoadedRun}`, the runs `frozen_runs` declared) into `params`. It must keep
      every shape and dtype; it is never traced.

    A method whose *builder* needs another run's config (to build a teacher or tokenizer of the
    right shape) declares it at registration, `register_method(name, reads=...)`
    (`mmjax.methods.registry`); `mmjax.train.build_method` reads those configs.

    Export reads one hook when present: `encoder(params) -> (ViTConfig, encoder params)`, the
    `mmjax.models.vit.ViTEncoder` whose tokens `features` pools (`python -m mmjax export`
    writes it as safetensors, a StableHLO feature extractor or an HF `ViTModel`; `finetune`
    trains it). Params without a `cls_token` (I-JEPA) mean an encoder built with
    `cls_token=False`; a subclass whose encoder does not read images sets `encoder = None`.

    Evaluation is not a method hook: `mmjax.evaluate.protocols` names the end-of-run
    evaluations (`eval.protocols`, default per method) and runs them against the method's
    public functions (`features`, `reconstruct`, `tokenize`, `impute`, ...).
    """

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        """Fresh float32 parameters for batches shaped like `batch`."""
        ...

    def loss(self, params: Params, batch: Batch, rng: jax.Array, train: bool = True) -> tuple[jax.Array, dict]:
        """Scalar float32 loss and a dict of scalar metrics (plus `STATE_INPUTS`, optionally)."""
        ...

    def param_axes(self) -> Any:
        """A pytree like the params holding logical-axis `PartitionSpec`s."""
        ...
