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

The evaluation asks it for labelled batches of a split (`eval_batches`).

A modality module defines its `DataKind` and registers it with
`mmjax.data.registry.register_data_kind` next to its pipeline; this module imports the
built-in modalities (so their kinds are registered) and looks kinds up. The registry imports
no modality, so no import goes in a circle.
"""

from __future__ import annotations

from typing import Any

import mmjax.data.audio  # noqa: F401  (registers "audio")
import mmjax.data.docstrings  # noqa: F401  (registers "text_classes")
import mmjax.data.pipeline  # noqa: F401  (registers "images")
import mmjax.data.series  # noqa: F401  (registers "series")
import mmjax.data.shapes  # noqa: F401  (registers "points")
import mmjax.data.tables  # noqa: F401  (registers "tables")
import mmjax.data.text  # noqa: F401  (registers "text")
import mmjax.data.video  # noqa: F401  (registers "video")
from mmjax.data.registry import DEFAULT_KIND, DataKind, register_data_kind, registered_kinds


def available_data_kinds() -> list[str]:
    return sorted(registered_kinds())


def data_kind(data_config: Any) -> DataKind:
    """The kind named by `data_config.kind` (default `"images"`)."""
    kinds = registered_kinds()
    name = data_config.get("kind", DEFAULT_KIND) if hasattr(data_config, "get") else DEFAULT_KIND
    if name not in kinds:
        raise ValueError(f"data.kind={name!r} is not a registered data kind; available: {sorted(kinds)}")
    return kinds[name]


__all__ = ["DEFAULT_KIND", "DataKind", "available_data_kinds", "data_kind", "register_data_kind"]
