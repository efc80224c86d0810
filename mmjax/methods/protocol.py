"""The method protocol the trainer relies on (DESIGN.md principle 3)."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

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


class Method(Protocol):
    """A masked-modeling method: a small bundle of pure functions over a params pytree.

    Required: `init`, `loss`, `param_axes`. Optional hooks the trainer uses when present:

    - `trainable(params) -> pytree of bool`: False leaves are frozen (a teacher, an EMA
      target, an EMA codebook); the optimizer neither updates them nor keeps moments for them.
    - `after_step(params, state_inputs, step) -> params`: a non-gradient update inside the
      jitted step, after the optimizer (EMA targets, codebook statistics, dead-code restarts).
      `state_inputs` is what `loss` returned under `metrics[STATE_INPUTS]` (or None);
      `step` is the number of updates applied before this one.
    - `load_frozen(params) -> params`: host-side, once, on a fresh run (not on resume):
      fill frozen parts from elsewhere, e.g. a teacher from another run's checkpoint. It must
      keep every shape and dtype; it is never traced (it may read files).
    - `evaluate(config, params, workdir) -> list[EvalResult]`: the end-of-run evaluation, when
      the image probe of `mmjax.evaluate.evaluate_pretraining` does not fit the method. It
      prints nothing (the caller prints the table and writes `eval.json`), writes files only
      on process 0, and gets host-local parameters (the same on every process).
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
