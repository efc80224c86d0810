"""The `video` data kind: clip sources, grain pipelines and on-device normalization.

Sources (`data.source`):
- `moving_digits`: the bundled two-digit clips (`mmjax.data.moving_digits`).
- `npy_folder`: user-provided clips, `data.root/<class name>/<clip>.npy`, each uint8
  `[frames, H, W, C]` (decode your videos once, e.g. Kinetics or SSv2 with ffmpeg or
  decord, and save `data.frames * data.frame_stride` or more frames per file). Labels
  are the sorted class-folder indices. The first `frames` frames at `frame_stride`
  are taken and each frame is resized and center-cropped to `data.image_size`.
"""

from __future__ import annotations

import os
from typing import Any

import grain
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.data.moving_digits import MovingDigitsSource
from mmjax.data.pipeline import batched_stream
from mmjax.data.presets import VideoData, complete_data
from mmjax.data.registry import DataKind, register_data_kind
from mmjax.data.transforms import normalize_images, resize_center_crop


class NpyVideoFolder:
    """Clips under `root/<class>/*.npy` -> `{"video": uint8 [T, H, W, C], "label": int32}`."""

    def __init__(self, root: str, frames: int, image_size: tuple[int, int], frame_stride: int = 1):
        if not os.path.isdir(root):
            raise FileNotFoundError(f"data.root={root!r} is not a directory of <class>/<clip>.npy files")
        self.classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        self.files = [
            (os.path.join(root, c, f), i)
            for i, c in enumerate(self.classes)
            for f in sorted(os.listdir(os.path.join(root, c)))
            if f.endswith(".npy")
        ]
        if not self.files:
            raise ValueError(f"data.root={root!r} holds no <class>/<clip>.npy files")
        self.frames, self.image_size, self.stride = frames, tuple(image_size), frame_stride

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, label = self.files[index]
        clip = np.load(path, mmap_mode="r")
        need = self.frames * self.stride
        if clip.ndim != 4 or clip.dtype != np.uint8 or len(clip) < need:
            raise ValueError(
                f"{path}: need uint8 [>={need}, H, W, C] for data.frames x data.frame_stride, got "
                f"{clip.dtype} {clip.shape}"
            )
        frames = [resize_center_crop(np.asarray(f), self.image_size) for f in clip[: need : self.stride]]
        return {"video": np.stack(frames), "label": np.int32(label)}


def make_video_source(data_config: Any, split: str) -> Any:
    """The clip source of `data.source` for `split` ("train" / "test")."""
    data_config = complete_data(VideoData, data_config)
    name = data_config.source
    if name == "moving_digits":
        count = data_config.num_train if split == "train" else data_config.num_test
        size = data_config.image_size
        if size[0] != size[1]:
            raise ValueError(f"moving_digits needs square frames, got data.image_size={tuple(size)}")
        return MovingDigitsSource(split, count, data_config.frames, size[0], data_config.digit_size, data_config.seed)
    if name == "npy_folder":
        root = os.path.join(data_config.root, split)
        return NpyVideoFolder(root, data_config.frames, data_config.image_size, data_config.frame_stride)
    raise ValueError(f"data.source={name!r} is not a video source; expected 'moving_digits' or 'npy_folder'")


def video_train_dataset(
    data_config: Any, global_batch_size: int, seed: int, process_index: int, process_count: int
) -> grain.IterDataset:
    """Endless shuffled batches `{"video": uint8 [b, T, H, W, C], "label": int32 [b]}` of this process's share."""
    data_config = complete_data(VideoData, data_config)
    ds = grain.MapDataset.source(make_video_source(data_config, "train"))[process_index::process_count]
    return batched_stream(ds.shuffle(seed=seed).repeat(None), global_batch_size, process_count, data_config)


def video_eval_dataset(data_config: Any, split: str, batch_size: int) -> grain.MapDataset:
    """All of `split` in order, batched (last batch kept)."""
    return grain.MapDataset.source(make_video_source(data_config, split)).batch(batch_size, drop_remainder=False)


def video_batch_spec(data_config: Any, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    """Host batches: `video` uint8 `[B, T, H, W, C]`, `label` int32 `[B]`."""
    data_config = complete_data(VideoData, data_config)
    h, w = data_config.image_size
    shape = (batch_size, data_config.frames, h, w, data_config.channels)
    return {
        "video": jax.ShapeDtypeStruct(shape, jnp.uint8),
        "label": jax.ShapeDtypeStruct((batch_size,), jnp.int32),
    }


def prepare_video(batch: dict[str, jax.Array], data_config: Any) -> dict[str, jax.Array]:
    """uint8 clips -> float32 `(x / 255 - mean) / std` per channel, inside the jitted step."""
    return {**batch, "video": normalize_images(batch["video"], data_config.mean, data_config.std)}


VIDEO = register_data_kind(DataKind("video", video_train_dataset, video_batch_spec, prepare_video, video_eval_dataset))
