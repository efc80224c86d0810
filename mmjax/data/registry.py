"""The data-kind registry: `DataKind` and `register_data_kind`, which every modality module imports.

It imports no modality: `mmjax.data.kinds` imports the built-in modalities (each registers
its kind here when imported) and looks kinds up, so the imports point one way only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import jax.numpy as jnp

DEFAULT_KIND = "images"


@dataclasses.dataclass(frozen=True)
class DataKind:
    """What a batch of one modality holds, how it is streamed, how it is prepared on device.

    Attributes:
      name: the `data.kind` that names it.
      train_dataset: `(data_config, global_batch_size, seed, process_index, process_count)` ->
        an endless grain `IterDataset` of host batches (this process's share).
      batch_spec: `(data_config, batch_size)` -> `{name: jax.ShapeDtypeStruct}` of a host batch.
      prepare: the traceable host-batch -> model-batch map run inside the jitted step.
      eval_dataset: `(data_config, split, batch_size)` -> every labelled host batch of `split`
        in order (last batch kept), for the end-of-run evaluation; None: the kind has none.
    """

    name: str
    train_dataset: Callable[..., Iterator[dict[str, Any]]]
    batch_spec: Callable[[Any, int], dict[str, jax.ShapeDtypeStruct]]
    prepare: Callable[[dict[str, jax.Array], Any], dict[str, jax.Array]] = lambda batch, data_config: batch
    eval_dataset: Callable[[Any, str, int], Iterable[dict[str, Any]]] | None = None

    def example_batch(self, data_config: Any, batch_size: int = 1) -> dict[str, jax.Array]:
        """A prepared all-zeros batch, for `method.init`."""
        spec = self.batch_spec(data_config, batch_size)
        return self.prepare({k: jnp.zeros(s.shape, s.dtype) for k, s in spec.items()}, data_config)

    def eval_batches(self, data_config: Any, split: str, batch_size: int) -> Iterable[dict[str, Any]]:
        """`eval_dataset(data_config, split, batch_size)`; a one-line error when the kind has none."""
        if self.eval_dataset is None:
            raise ValueError(f"data.kind={self.name!r} has no evaluation batches (its DataKind sets no eval_dataset)")
        return self.eval_dataset(data_config, split, batch_size)


_KINDS: dict[str, DataKind] = {}


def register_data_kind(kind: DataKind) -> DataKind:
    if kind.name in _KINDS:
        raise ValueError(f"data kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def registered_kinds() -> dict[str, DataKind]:
    """The kinds registered so far (a copy); `mmjax.data.kinds` has the built-in ones imported."""
    return dict(_KINDS)


__all__ = ["DEFAULT_KIND", "DataKind", "register_data_kind", "registered_kinds"]
