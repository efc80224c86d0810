"""Data kinds: what a batch holds, how it is streamed, how it is prepared on device.

The trainer never names a modality. It asks the kind named by `config.data.kind`
(default `"images"`) for three things:

- `train_dataset(data_config, global_batch_size, seed, process_index, process_count)`:
  an endless grain `IterDataset` of host batches (dicts of NumPy arrays, this process's
  share); its iterator state is checkpointed with the train state.
- `batch_spec(data_config, batch_size)`: `{name: jax.ShapeDtypeStruct}` of a host batch,
  used to compile the step from shapes alone and to shard each entry over the batch axes.
- `prepare(batch, data_config)`: the traceable host-batch -> model-batch map run inside
  the jitted step (for images: uint8 -> normalized float32).

A modality registers its kind with `register_data_kind` next to its pipeline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp

DEFAULT_KIND = "images"


@dataclasses.dataclass(frozen=True)
class DataKind:
    name: str
    train_dataset: Callable[..., Iterator[dict[str, Any]]]
    batch_spec: Callable[[Any, int], dict[str, jax.ShapeDtypeStruct]]
    prepare: Callable[[dict[str, jax.Array], Any], dict[str, jax.Array]] = lambda batch, data_config: batch

    def example_batch(self, data_config: Any, batch_size: int = 1) -> dict[str, jax.Array]:
        """A prepared all-zeros batch, for `method.init`."""
        spec = self.batch_spec(data_config, batch_size)
        return self.prepare({k: jnp.zeros(s.shape, s.dtype) for k, s in spec.items()}, data_config)


_KINDS: dict[str, DataKind] = {}


def register_data_kind(kind: DataKind) -> DataKind:
    if kind.name in _KINDS:
        raise ValueError(f"data kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def available_data_kinds() -> list[str]:
    _import_builtin_kinds()
    return sorted(_KINDS)


def data_kind(data_config: Any) -> DataKind:
    """The kind named by `data_config.kind` (default `"images"`)."""
    _import_builtin_kinds()
    name = data_config.get("kind", DEFAULT_KIND) if hasattr(data_config, "get") else DEFAULT_KIND
    if name not in _KINDS:
        raise ValueError(f"data.kind={name!r} is not a registered data kind; available: {sorted(_KINDS)}")
    return _KINDS[name]


def _import_builtin_kinds() -> None:
    import mmjax.data.audio  # noqa: F401  (registers "audio")
    import mmjax.data.pipeline  # noqa: F401  (registers "images")
    import mmjax.data.series  # noqa: F401  (registers "series")
    import mmjax.data.shapes  # noqa: F401  (registers "points")
    import mmjax.data.tables  # noqa: F401  (registers "tables")
    import mmjax.data.text  # noqa: F401  (registers "text")
    import mmjax.data.video  # noqa: F401  (registers "video")
