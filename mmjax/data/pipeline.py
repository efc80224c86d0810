"""grain pipelines: source -> per-process shard -> shuffle -> transforms -> batches."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grain
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.data.presets import ImageData, complete_data
from mmjax.data.registry import DataKind, register_data_kind
from mmjax.data.sources import make_source
from mmjax.data.transforms import EvalResize, TrainAugment, normalize_images


def per_process_batch_size(global_batch_size: int, count: int | None = None) -> int:
    """This process's share of the global batch; it must divide evenly."""
    count = jax.process_count() if count is None else count
    if global_batch_size % count:
        raise ValueError(f"train.batch_size={global_batch_size} is not divisible by {count} processes")
    return global_batch_size // count


def batched_stream(
    ds: grain.MapDataset, global_batch_size: int, process_count: int, data_config: Any
) -> grain.IterDataset:
    """This process's endless example stream `ds`, read ahead by `data.num_threads` threads, in batches.

    Batching comes after the read, so the iterator state (saved in checkpoints) is a position in
    examples: a resumed run may change `train.batch_size` and goes on with the next example.
    """
    # Any registered kind streams through here, a kind without a declared section too (no `num_threads`).
    threads = data_config.get("num_threads", 0)
    read = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=max(2, 2 * threads))
    batch = per_process_batch_size(global_batch_size, process_count)
    return ds.to_iter_dataset(read).batch(batch, drop_remainder=True)


def train_dataset(
    data_config: Any,
    global_batch_size: int,
    seed: int,
    process_index: int | None = None,
    process_count: int | None = None,
) -> grain.IterDataset:
    """An endless, deterministic stream of host batches `{"image": uint8 [b, H, W, C], "label": [b]}`.

    Each process reads only its slice of the source (`[process_index::process_count]`);
    every epoch is reshuffled from `seed`; augmentations are seeded per element, so the
    stream is a pure function of (seed, position) and its iterator state fits in a checkpoint.
    """
    data_config = complete_data(ImageData, data_config)
    index = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    source = make_source(data_config, "train")
    ds = grain.MapDataset.source(source)[index::count]
    ds = ds.shuffle(seed=seed)
    augment = TrainAugment(tuple(data_config.image_size), data_config.crop_scale, data_config.flip)
    ds = ds.random_map(augment, seed=seed + 1).repeat(None)
    return batched_stream(ds, global_batch_size, count, data_config)


def eval_dataset(data_config: Any, split: str, batch_size: int) -> grain.MapDataset:
    """All of `split` in order, resized for the model, batched (last batch kept)."""
    data_config = complete_data(ImageData, data_config)
    source = make_source(data_config, split)
    ds = grain.MapDataset.source(source).map(EvalResize(tuple(data_config.image_size)))
    return ds.batch(batch_size, drop_remainder=False)


def padded_batches(batches: Iterable[dict[str, np.ndarray]], size: int) -> Iterable[tuple[dict[str, np.ndarray], int]]:
    """Each batch padded (by repeating its last row) to `size` rows, with its true row count: one compile."""
    for batch in batches:
        n = len(next(iter(batch.values())))
        yield {k: np.concatenate([v, np.repeat(v[-1:], size - n, axis=0)]) for k, v in batch.items()}, n


def image_batch_spec(data_config: Any, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    """Host image batches: `image` uint8 `[B, H, W, C]`, `label` int32 `[B]`."""
    data_config = complete_data(ImageData, data_config)
    h, w = data_config.image_size
    return {
        "image": jax.ShapeDtypeStruct((batch_size, h, w, data_config.channels), jnp.uint8),
        "label": jax.ShapeDtypeStruct((batch_size,), jnp.int32),
    }


def prepare_images(batch: dict[str, jax.Array], data_config: Any) -> dict[str, jax.Array]:
    """uint8 images -> normalized float32, inside the jitted step."""
    return {**batch, "image": normalize_images(batch["image"], data_config.mean, data_config.std)}


IMAGES = register_data_kind(DataKind("images", train_dataset, image_batch_spec, prepare_images, eval_dataset))
